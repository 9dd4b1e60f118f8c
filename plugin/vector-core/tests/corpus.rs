//! The adapter core on `vrl` values built from the real event corpus tags exactly what the
//! CLI tags, and leaves every other field as it was.

use std::path::PathBuf;

use sigmatag_vector::{Outcome, TagConfig, VrlTagger};
use vrl::value::Value;

/// `../shared/<what>` (or `$SIGMATAG_SHARED/<what>`); skipped when missing, failed under CI.
fn shared(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SIGMATAG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let p = dir.join(what);
    if p.exists() {
        return Some(p);
    }
    let msg = format!("{} not found (set SIGMATAG_SHARED)", p.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true: a missing corpus is a failure");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

#[test]
fn vrl_values_get_the_cli_tags_and_nothing_else_changes() {
    let (Some(events), Some(rules)) = (
        shared("corpus/events"),
        shared("corpus/sigmahq/rules/windows"),
    ) else {
        return;
    };
    let cfg = TagConfig {
        rules: vec![rules],
        mapping: Some("evtx".into()),
        ..TagConfig::default()
    };
    let tagger = VrlTagger::new(cfg.build().expect("rules load"));
    assert!(
        tagger.tagger().set.len() > 2000,
        "{}",
        tagger.tagger().set.len()
    );
    let mut scratch = tagger.scratch();
    let mut cli_scratch = tagger.scratch();
    let mut cli_out = Vec::new();
    let (mut records, mut matched, mut cli_matched) = (0usize, 0usize, 0usize);
    for file in ["process_creation.jsonl", "windows-evtx.jsonl"] {
        let text = std::fs::read(events.join(file)).expect("read corpus");
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            records += 1;
            // The CLI's path: bytes in, tag spliced into the bytes.
            cli_out.clear();
            let cli = tagger
                .tagger()
                .tag_line(&mut cli_scratch, line, &mut cli_out);
            cli_matched += usize::from(cli == Outcome::Matched);
            let expected: Value = serde_json::from_slice(&cli_out).expect("CLI output is JSON");
            // The vrl path: a value as Vector's JSON codec builds it, tagged in place.
            let mut v: Value = serde_json::from_slice(line).expect("corpus line is JSON");
            let got = tagger.tag(&mut scratch, &mut v);
            matched += usize::from(got == Outcome::Matched);
            assert_eq!(got, cli, "{file}:{}: outcome", n + 1);
            assert!(
                v == expected,
                "{file}:{}: tagged value differs from the CLI's",
                n + 1
            );
        }
    }
    assert!(records > 18_000, "{records}");
    assert_eq!(matched, cli_matched);
    // The corpus is attack recordings: a broken adapter that never matches must fail here.
    assert!(matched > 100, "only {matched} of {records} matched");
    eprintln!("{records} records, {matched} matched");
}
