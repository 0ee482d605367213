//! `docs/configuration.md` is generated from the code: every `Options` field (its doc
//! comment, type and default) and every feature flag of every crate (the comment above it in
//! the crate's `Cargo.toml`). A change to either fails this test until the page is
//! regenerated with `LIGHTNING_UPDATE_DOCS=1 cargo nextest run -p lightning-db config_reference`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lightning_db::Options;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(name, type, doc)` of every public field of `Options`, in declaration order.
fn option_fields(source: &str) -> Vec<(String, String, String)> {
    let start = source
        .find("pub struct Options {")
        .expect("options.rs declares Options");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").expect("Options ends")];
    let mut fields = Vec::new();
    let mut doc = Vec::new();
    for line in body.lines().skip(1) {
        let line = line.trim();
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_owned());
        } else if let Some(field) = line.strip_prefix("pub ") {
            let (name, ty) = field.split_once(':').expect("a field has a type");
            let ty = ty.trim().trim_end_matches(',').to_owned();
            fields.push((name.trim().to_owned(), ty, doc.join(" ")));
            doc.clear();
        }
    }
    fields
}

/// Rustdoc links as plain text: ``[`a`](crate::b)`` and ``[`a`]`` become `` `a` ``.
fn plain(doc: &str) -> String {
    let mut out = String::new();
    let mut rest = doc;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            out.push_str(&rest[open..]);
            return out;
        };
        out.push_str(&after[..close]);
        rest = &after[close + 1..];
        if rest.starts_with('(')
            && let Some(end) = rest.find(')')
        {
            rest = &rest[end + 1..];
        }
    }
    out.push_str(rest);
    out.replace('|', "\\|")
}

/// `(crate, feature, description)` of every feature but `default`, from the comment lines
/// just above it.
fn features() -> Vec<(String, String, String)> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("lightning-"))
                && p.join("Cargo.toml").exists()
        })
        .collect();
    crates.sort();
    let mut out = Vec::new();
    for dir in crates {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let mut in_features = false;
        let mut comment = Vec::new();
        for line in toml.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_features = line == "[features]";
                continue;
            }
            if !in_features {
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                comment.push(c.trim().to_owned());
            } else if let Some((feature, _)) = line.split_once('=') {
                let feature = feature.trim().to_owned();
                if feature != "default" {
                    assert!(
                        !comment.is_empty(),
                        "feature `{feature}` of {name} has no comment above it in Cargo.toml"
                    );
                    out.push((name.clone(), feature, comment.join(" ")));
                }
                comment.clear();
            } else {
                comment.clear();
            }
        }
    }
    out
}

fn generate() -> String {
    let source = std::fs::read_to_string(root().join("lightning-db/src/options.rs")).unwrap();
    let fields = option_fields(&source);
    let defaults = serde_json::to_value(Options::default()).unwrap();
    let defaults = defaults.as_object().unwrap();
    assert_eq!(
        fields.len(),
        defaults.len(),
        "every serialized option is a documented field"
    );
    let mut s = String::new();
    s.push_str(
        "# Configuration reference\n\n\
         Generated from the code by `lightning-db/tests/integration/config_reference.rs`: a \
         change to\n`Options` or to a crate's features fails that test until this page is \
         regenerated with\n`LIGHTNING_UPDATE_DOCS=1 cargo nextest run -p lightning-db \
         config_reference`.\n\n\
         ## `lightning_db::Options`\n\n\
         Passed to `Database::open`; serde (de)serializable under these names (unknown \
         fields are\nrefused, missing ones take their default) and validated on open: a \
         value out of range is\n`Error::InvalidOption` naming the field.\n\n\
         | option | type | default | what, unit, range |\n|---|---|---|---|\n",
    );
    for (name, ty, doc) in &fields {
        let default = defaults
            .get(name)
            .unwrap_or_else(|| panic!("{name} is serialized"));
        writeln!(s, "| `{name}` | `{ty}` | `{default}` | {} |", plain(doc)).unwrap();
    }
    s.push_str(
        "\n## Feature flags\n\n\
         No crate has a default feature. `lightning-db` forwards the features of the crates it \
         re-exports.\n\n\
         | crate | feature | enables |\n|---|---|---|\n",
    );
    for (krate, feature, what) in features() {
        writeln!(s, "| `{krate}` | `{feature}` | {} |", plain(&what)).unwrap();
    }
    s
}

#[test]
fn the_configuration_reference_matches_the_code() {
    let path = root().join("docs/configuration.md");
    let generated = generate();
    if std::env::var_os("LIGHTNING_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md is out of date with Options or the crates' features: regenerate \
         it with LIGHTNING_UPDATE_DOCS=1 cargo nextest run -p lightning-db config_reference"
    );
}
