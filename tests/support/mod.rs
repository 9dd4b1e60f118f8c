//! Helpers shared by the integration tests.
#![allow(dead_code)]
#![allow(missing_docs)]

use std::path::PathBuf;

/// The `shared/` folder beside the repository (or `$SIGMATAG_SHARED`).
///
/// Under `CI=true` a missing corpus fails the test; otherwise the test is skipped with a
/// message saying what to fetch.
pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SIGMATAG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join(what).exists() {
        return Some(dir);
    }
    let msg = format!(
        "{} not found under {}: set SIGMATAG_SHARED to a folder holding corpus/sigmahq (a SigmaHQ/sigma checkout), corpus/events and seed/",
        what,
        dir.display()
    );
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{msg} (CI=true: a missing corpus is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// The `shared/` folder when it holds both the real events and the SigmaHQ rules (what the
/// corpus tests read), with [`shared_dir`]'s skip-or-fail for each.
pub fn shared_corpus() -> Option<PathBuf> {
    let shared = shared_dir("corpus/events")?;
    shared_dir("corpus/sigmahq")?;
    Some(shared)
}

/// Load options with the repository's example placeholders (`examples/placeholders.yml`),
/// which the SigmaHQ placeholder rules need.
pub fn example_load_options() -> sigmatag_rule::LoadOptions {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/placeholders.yml");
    sigmatag_rule::LoadOptions {
        placeholders: sigmatag::read_placeholders(&p).expect("examples/placeholders.yml"),
    }
}

/// The SigmaHQ active rule folders counted by the engine issue.
pub const ACTIVE_RULE_DIRS: &[&str] = &[
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-placeholder",
    "rules-compliance",
];

/// Every rule of the active SigmaHQ folders under `shared` ([`ACTIVE_RULE_DIRS`]), parsed
/// with `opts` (rules that do not parse are left out), and how many files were read.
pub fn active_rules(
    shared: &std::path::Path,
    opts: &sigmatag_rule::LoadOptions,
) -> (Vec<sigmatag_rule::Rule>, usize) {
    let mut files = Vec::new();
    for d in ACTIVE_RULE_DIRS {
        sigmatag::collect_rule_files(&shared.join("corpus/sigmahq").join(d), &mut files)
            .expect("rule folder");
    }
    let texts = files.iter().map(|f| {
        (
            f.display().to_string(),
            std::fs::read_to_string(f).expect("rule file").into(),
        )
    });
    let (rules, _) = sigmatag::parse_texts(texts, opts);
    (rules, files.len())
}
