//! Every SigmaHQ detection rule of the active folders compiles (or is rejected with a
//! reason), all together and one file at a time; `expand` rules need placeholder values.
//!
//! Reads `../shared/corpus/sigmahq` (or `$SIGMATAG_SHARED/corpus/sigmahq`); fails under
//! `CI=true` when it is missing.

use std::path::PathBuf;

use sigmatag::{collect_rule_files, load};
use sigmatag_matcher::{Pipeline, RuleSet};
use sigmatag_rule::{parse_rules, LoadOptions};
use sigmatag_suite::{example_load_options, shared_dir, ACTIVE_RULE_DIRS};

fn active_dirs() -> Option<Vec<PathBuf>> {
    let shared = shared_dir("corpus/sigmahq")?;
    Some(
        ACTIVE_RULE_DIRS
            .iter()
            .map(|d| shared.join("corpus/sigmahq").join(d))
            .collect(),
    )
}

fn uses_expand(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| t.contains("|expand"))
        .unwrap_or(false)
}

#[test]
fn all_active_rules_load_together() {
    let Some(dirs) = active_dirs() else { return };
    let mut files = Vec::new();
    for d in &dirs {
        collect_rule_files(d, &mut files).unwrap();
    }
    assert_eq!(
        files.len(),
        3780,
        "the corpus snapshot has 3,780 active rule files"
    );
    let expand_files: Vec<String> = files
        .iter()
        .filter(|f| uses_expand(f))
        .map(|f| f.display().to_string())
        .collect();
    assert!(!expand_files.is_empty());

    let loaded = load(&dirs, Pipeline::flat(), &LoadOptions::default()).unwrap();
    let mut non_expand_rejected = 0;
    for e in &loaded.rejected {
        assert!(!e.reason.is_empty() && e.loc.line >= 1, "{e}");
        if expand_files.contains(&e.source) {
            assert!(
                e.reason.contains("placeholder '%"),
                "expand rule rejected for another reason: {e}"
            );
        } else {
            non_expand_rejected += 1;
            eprintln!("rejected: {e}");
        }
    }
    let non_expand = files.len() - expand_files.len();
    let rate = (non_expand - non_expand_rejected) as f64 / non_expand as f64;
    eprintln!(
        "{} rules: {} loaded, {} rejected ({} expand rules without placeholders); non-expand load rate {:.4}",
        files.len(),
        loaded.set.len(),
        loaded.rejected.len(),
        expand_files.len(),
        rate
    );
    assert!(rate >= 0.995, "load rate {rate}");
    assert_eq!(loaded.set.len() + loaded.rejected.len(), files.len());

    // With placeholder values, the expand rules load too.
    let with = load(&dirs, Pipeline::flat(), &example_load_options()).unwrap();
    assert_eq!(
        with.set.len(),
        loaded.set.len() + expand_files.len(),
        "{:?}",
        with.rejected
    );
}

#[test]
fn every_rule_file_loads_on_its_own() {
    let Some(dirs) = active_dirs() else { return };
    let mut files = Vec::new();
    for d in &dirs {
        collect_rule_files(d, &mut files).unwrap();
    }
    let opts = example_load_options();
    let mut ok = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rules: Vec<_> = parse_rules(&text, &f.display().to_string(), &opts)
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
        if set.len() == 1 && errors.is_empty() {
            ok += 1;
        }
    }
    assert!(
        ok as f64 / files.len() as f64 >= 0.995,
        "{ok} of {}",
        files.len()
    );
}

#[test]
fn windows_rules_compile_under_evtx_mapping() {
    let Some(shared) = shared_dir("corpus/sigmahq") else {
        return;
    };
    let dir = shared.join("corpus/sigmahq/rules/windows");
    let loaded = load(
        &[dir],
        Pipeline::preset("evtx").unwrap(),
        &example_load_options(),
    )
    .unwrap();
    for e in &loaded.rejected {
        // Only logsources that no event log carries (ETW-only file_access / file_rename).
        assert!(
            e.reason
                .contains("has no logsource for product=windows category=file_"),
            "{e}"
        );
    }
    assert!(loaded.set.len() >= 2390, "{}", loaded.set.len());
}
