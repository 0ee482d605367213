//! A backup repository: the directory backups go to, what is in it, and retention.
//!
//! ```text
//! <dest>/<id>.manifest     a complete backup's manifest (written last)
//! <dest>/<id>.partial      marker of a backup being written (or cut short, or being pruned)
//! <dest>/<id>/pages        the backup's page images
//! <dest>/<id>/wal/         the backup's log segments
//! ```
//!
//! Ids are six or more decimal digits, ascending; a new backup takes the next id after
//! every id present, complete or not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lightning_page::vfs::Vfs;
use lightning_wal::Lsn;

use crate::manifest::{Kind, Manifest};
use crate::{Error, Result};

pub(crate) const PAGES: &str = "pages";
pub(crate) const WAL: &str = "wal";

pub(crate) fn manifest_path(dest: &Path, id: u64) -> PathBuf {
    dest.join(format!("{id:06}.manifest"))
}

pub(crate) fn partial_path(dest: &Path, id: u64) -> PathBuf {
    dest.join(format!("{id:06}.partial"))
}

pub(crate) fn removing_path(dest: &Path, id: u64) -> PathBuf {
    dest.join(format!("{id:06}.removing"))
}

pub(crate) fn data_dir(dest: &Path, id: u64) -> PathBuf {
    dest.join(format!("{id:06}"))
}

/// What a backup in a repository is.
#[derive(Debug, Clone)]
pub enum State {
    /// Its manifest is there and checks out.
    Complete(Box<Manifest>),
    /// It was cut short (or is being written now): it has no manifest.
    Incomplete,
    /// Its manifest is damaged; the reason.
    Damaged(String),
}

/// One backup of a repository.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its id.
    pub id: u64,
    /// What it is.
    pub state: State,
}

/// The backups in a directory.
#[derive(Debug)]
pub struct Repository {
    dest: PathBuf,
    entries: BTreeMap<u64, Entry>,
}

fn parse_id(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Repository {
    /// Reads the repository at `dest` (empty when the directory does not exist).
    pub fn open(vfs: &dyn Vfs, dest: &Path) -> Result<Repository> {
        let files = match vfs.list(dest) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("list", dest, e)),
        };
        let mut entries = BTreeMap::new();
        let mut partial = BTreeSet::new();
        let mut removing = BTreeSet::new();
        for path in files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(id) = parse_id(name, ".manifest") {
                let state = match crate::read::read_manifest(vfs, dest, id) {
                    Ok(m) => State::Complete(Box::new(m)),
                    Err(e) if e.is_corruption() => State::Damaged(e.to_string()),
                    Err(e) => return Err(e),
                };
                entries.insert(id, Entry { id, state });
            } else if let Some(id) = parse_id(name, ".removing") {
                removing.insert(id);
            } else if let Some(id) =
                parse_id(name, ".partial").or_else(|| parse_id(name, ".manifest-tmp"))
            {
                partial.insert(id);
            }
        }
        // A `.partial` marker beside a manifest: the backup finished and only its marker
        // was left (complete). A `.removing` marker: a prune began removing it.
        for id in partial {
            entries.entry(id).or_insert(Entry {
                id,
                state: State::Incomplete,
            });
        }
        for id in removing {
            entries.insert(
                id,
                Entry {
                    id,
                    state: State::Incomplete,
                },
            );
        }
        Ok(Repository {
            dest: dest.to_path_buf(),
            entries,
        })
    }

    /// The repository's directory.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Every backup, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The id the next backup takes.
    pub fn next_id(&self) -> u64 {
        self.entries.keys().next_back().map_or(1, |id| id + 1)
    }

    /// The complete backups, oldest first.
    pub fn complete(&self) -> impl Iterator<Item = &Manifest> {
        self.entries.values().filter_map(|e| match &e.state {
            State::Complete(m) => Some(&**m),
            _ => None,
        })
    }

    /// The newest complete backup of database `database_id`, if any.
    pub fn newest_complete(&self, database_id: u64) -> Result<Option<Manifest>> {
        Ok(self
            .complete()
            .filter(|m| m.database_id == database_id)
            .last()
            .cloned())
    }

    /// The complete backup `id`; an error says why it cannot be used.
    pub fn manifest(&self, id: u64) -> Result<&Manifest> {
        match self.entries.get(&id).map(|e| &e.state) {
            Some(State::Complete(m)) => Ok(m),
            Some(State::Incomplete) => Err(Error::Incomplete {
                dest: self.dest.clone(),
                id,
            }),
            Some(State::Damaged(why)) => {
                Err(Error::corrupt(manifest_path(&self.dest, id), why.clone()))
            }
            None => Err(Error::NotFound {
                dest: self.dest.clone(),
                what: format!("with id {id}"),
            }),
        }
    }

    /// The chain that restores backup `id`: its full backup first, `id` last. Every link
    /// must be complete and fit its parent (same database and page size, each base
    /// generation the parent's generation).
    pub fn chain(&self, id: u64) -> Result<Vec<Manifest>> {
        let mut out = vec![self.manifest(id)?.clone()];
        while let Some(parent_id) = out.last().and_then(|last| last.parent) {
            let Some(child) = out.last().cloned() else {
                break;
            };
            let parent = self.manifest(parent_id).map_err(|e| Error::Chain {
                id: child.id,
                reason: format!("its parent {parent_id} cannot be used: {e}"),
            })?;
            if parent.database_id != child.database_id
                || parent.page_size != child.page_size
                || parent.generation != child.base_generation
            {
                return Err(Error::Chain {
                    id: child.id,
                    reason: format!(
                        "it builds on generation {} of database {:016x}, but its parent {} holds \
                         generation {} of database {:016x}",
                        child.base_generation,
                        child.database_id,
                        parent.id,
                        parent.generation,
                        parent.database_id
                    ),
                });
            }
            out.push(parent.clone());
        }
        out.reverse();
        Ok(out)
    }

    /// The newest backup, which must be complete: a damaged manifest newer than every
    /// complete backup is an error (restoring an older backup instead would silently lose
    /// what the damaged one holds: name the older one to do that). Incomplete (interrupted)
    /// backups are passed over. Several databases in one repository: an error asks to
    /// name one.
    pub fn newest(&self) -> Result<&Manifest> {
        let dbs = self
            .complete()
            .map(|m| m.database_id)
            .collect::<BTreeSet<_>>();
        if dbs.len() > 1 {
            return Err(Error::NotFound {
                dest: self.dest.clone(),
                what: "of one database only: it holds backups of several; name the backup".into(),
            });
        }
        let newest = self
            .entries
            .values()
            .rev()
            .find(|e| !matches!(e.state, State::Incomplete))
            .ok_or_else(|| Error::NotFound {
                dest: self.dest.clone(),
                what: "at all".into(),
            })?;
        self.manifest(newest.id)
    }

    /// Every backup whose manifest is damaged, as errors.
    pub fn damaged(&self) -> impl Iterator<Item = Error> + '_ {
        self.entries.values().filter_map(|e| match &e.state {
            State::Damaged(why) => {
                Some(Error::corrupt(manifest_path(&self.dest, e.id), why.clone()))
            }
            _ => None,
        })
    }
}

/// What to keep when pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the chains of this many newest full backups.
    pub keep_full: Option<usize>,
    /// Keep every backup taken within this many microseconds before `now_us`.
    pub max_age_us: Option<u64>,
    /// The time to measure ages from (µs since the Unix epoch).
    pub now_us: u64,
}

/// What [`prune`] removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Complete backups kept.
    pub kept: Vec<u64>,
    /// Backups removed (complete ones the policy let go, and superseded incomplete ones).
    pub removed: Vec<u64>,
    /// Archived WAL segments removed.
    pub archived_segments_removed: usize,
    /// Records from this LSN on are kept in the archives (the oldest kept backup's
    /// checkpoint); `None` when nothing is kept, and then no archived segment is removed.
    pub archive_kept_from: Option<Lsn>,
}

/// The complete backups `policy` keeps, with every backup their chains need.
pub fn kept_by(complete: &[Manifest], policy: &Retention) -> BTreeSet<u64> {
    let mut keep = BTreeSet::new();
    if let Some(n) = policy.keep_full {
        let fulls: Vec<u64> = complete
            .iter()
            .filter(|m| m.kind == Kind::Full)
            .map(|m| m.id)
            .collect();
        let oldest_kept = fulls
            .len()
            .checked_sub(n)
            .and_then(|i| fulls.get(i))
            .copied();
        let from = if n == 0 {
            u64::MAX
        } else {
            oldest_kept.unwrap_or(0)
        };
        keep.extend(complete.iter().filter(|m| m.id >= from).map(|m| m.id));
    }
    if let Some(age) = policy.max_age_us {
        let since = policy.now_us.saturating_sub(age);
        keep.extend(
            complete
                .iter()
                .filter(|m| m.created_us >= since)
                .map(|m| m.id),
        );
    }
    if policy.keep_full.is_none() && policy.max_age_us.is_none() {
        keep.extend(complete.iter().map(|m| m.id));
    }
    // Every ancestor of a kept backup.
    let by_id: BTreeMap<u64, &Manifest> = complete.iter().map(|m| (m.id, m)).collect();
    let mut todo: Vec<u64> = keep.iter().copied().collect();
    while let Some(id) = todo.pop() {
        if let Some(p) = by_id.get(&id).and_then(|m| m.parent)
            && keep.insert(p)
        {
            todo.push(p);
        }
    }
    keep
}

/// Removes the backups `policy` does not keep (never one a kept backup's chain needs, and
/// never a damaged one: that is evidence, for a person to look at), incomplete backups older
/// than the newest complete one, and archived WAL segments in `archives` wholly below the
/// oldest kept backup's checkpoint (the start of the point-in-time recovery window).
pub fn prune(
    vfs: &dyn Vfs,
    dest: &Path,
    policy: &Retention,
    archives: &[PathBuf],
) -> Result<PruneReport> {
    let repo = Repository::open(vfs, dest)?;
    let complete: Vec<Manifest> = repo.complete().cloned().collect();
    let keep = kept_by(&complete, policy);
    let newest = complete.last().map_or(0, |m| m.id);
    let mut report = PruneReport::default();
    for e in repo.entries() {
        let remove = match &e.state {
            State::Complete(_) => !keep.contains(&e.id),
            State::Incomplete => e.id < newest,
            State::Damaged(_) => false,
        };
        if remove {
            remove_backup(vfs, dest, e.id)?;
            report.removed.push(e.id);
        } else if matches!(e.state, State::Complete(_)) {
            report.kept.push(e.id);
        }
    }
    let kept_from = complete
        .iter()
        .filter(|m| keep.contains(&m.id))
        .map(|m| m.checkpoint_lsn)
        .min();
    report.archive_kept_from = kept_from;
    if let Some(from) = kept_from {
        for dir in archives {
            report.archived_segments_removed += lightning_wal::prune_archive(vfs, dir, from)?;
        }
    }
    tracing::info!(
        kept = report.kept.len(),
        removed = report.removed.len(),
        archived = report.archived_segments_removed,
        "pruned backups"
    );
    Ok(report)
}

/// Removes a backup: marked incomplete first, so a crash part-way leaves an incomplete
/// backup (removed by the next prune), never a manifest whose files are gone.
fn remove_backup(vfs: &dyn Vfs, dest: &Path, id: u64) -> Result<()> {
    let marker = removing_path(dest, id);
    crate::write::create_synced(vfs, &marker, b"")?;
    vfs.sync_dir(dest)
        .map_err(|e| Error::io("sync directory", dest, e))?;
    for path in [
        manifest_path(dest, id),
        manifest_path(dest, id).with_extension("manifest-tmp"),
        partial_path(dest, id),
    ] {
        if vfs
            .exists(&path)
            .map_err(|e| Error::io("look for", &path, e))?
        {
            vfs.remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    vfs.sync_dir(dest)
        .map_err(|e| Error::io("sync directory", dest, e))?;
    let dir = data_dir(dest, id);
    for sub in [dir.join(WAL), dir.clone()] {
        let files = match vfs.list(&sub) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list", &sub, e)),
        };
        for f in files {
            vfs.remove(&f).map_err(|e| Error::io("remove", &f, e))?;
        }
    }
    vfs.remove(&marker)
        .map_err(|e| Error::io("remove", &marker, e))?;
    vfs.sync_dir(dest)
        .map_err(|e| Error::io("sync directory", dest, e))
}
