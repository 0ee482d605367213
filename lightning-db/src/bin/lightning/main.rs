//! `lightning`, Lightning DB's command-line tool (feature `cli`): `lightning demo` runs the
//! database's main job on a temporary database and prints what it did; the other
//! subcommands inspect a database directory (`stats`, `check`, `dump`, `keyspaces`), fix a
//! key (`get`, `put`, `delete`), shrink it (`compact`), time it (`bench`), or back it up
//! and bring it back (`backup`, `verify`, `restore`, `backups`, `prune`).
//!
//! Exit codes: 0 success; 1 a failure, or problems found (`check`) or nothing found
//! (`get`); 2 a usage error. `--format json` on every command that prints data.
#![expect(
    clippy::print_stderr,
    reason = "a command-line tool reports errors on standard error"
)]

mod args;
mod backups;
mod bench;
mod commands;
mod demo;
mod out;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::out::{CliError, Outcome};

fn run(cli: Cli) -> out::Result<Outcome> {
    let f = cli.format;
    match cli.command {
        Command::Demo { dir, seconds } => demo::run(dir.as_deref(), seconds, f),
        Command::Stats { dir, prometheus } => commands::stats(&dir, prometheus, f),
        Command::Check { dir } => commands::check(&dir, f),
        Command::Dump {
            dir,
            keyspace,
            prefix,
            range,
            limit,
            bytes,
        } => commands::dump(
            &dir,
            keyspace.as_deref(),
            prefix.as_deref(),
            range.as_deref(),
            limit,
            bytes.hex,
            f,
        ),
        Command::Keyspaces { dir } => commands::keyspaces(&dir, f),
        Command::Compact { dir } => commands::compact(&dir, f),
        Command::Get {
            dir,
            keyspace,
            key,
            bytes,
        } => commands::get(&dir, &keyspace, &key, bytes.hex, f),
        Command::Put {
            dir,
            keyspace,
            key,
            value,
            create,
            bytes,
        } => commands::write(&dir, &keyspace, &key, Some(&value), create, bytes.hex, f),
        Command::Delete {
            dir,
            keyspace,
            key,
            bytes,
        } => commands::write(&dir, &keyspace, &key, None, false, bytes.hex, f),
        Command::Bench {
            dir,
            seconds,
            threads,
        } => bench::run(&dir, seconds, threads, f),
        Command::Backup {
            dir,
            dest,
            incremental,
        } => backups::backup(&dir, &dest, incremental, f),
        Command::Verify { dest, backup } => backups::verify(&dest, backup, f),
        Command::Restore {
            dest,
            to,
            backup,
            to_lsn,
            to_time,
            latest,
            wal_from,
            force,
        } => backups::restore(
            &dest,
            &to,
            &backups::RestoreArgs {
                backup,
                to_lsn,
                to_time,
                latest,
                wal_from,
                force,
            },
            f,
        ),
        Command::Backups { dest } => backups::list(&dest, f),
        Command::Prune {
            dest,
            keep_full,
            max_age_days,
            wal_archive,
        } => backups::prune(&dest, keep_full, max_age_days, &wal_archive, f),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; anything else is a usage error.
            let code = if e.use_stderr() { 2 } else { 0 };
            if e.print().is_err() {
                return ExitCode::from(2);
            }
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        // `lightning dump | head`: the reader went away; nothing more to say.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
