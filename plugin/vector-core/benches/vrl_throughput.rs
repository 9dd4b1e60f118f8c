//! Records/s of the adapter core on `vrl` values (what the `sigma_tag` transform does per
//! event), next to the JSON byte reader on the same records, with every SigmaHQ
//! `rules/windows/process_creation` rule loaded under the `evtx` mapping.
//!
//! `cargo bench -p sigmatag-vector` (reads ../shared like the tests; prints, asserts nothing)

use std::path::PathBuf;
use std::time::Instant;

use sigmatag_matcher::JsonBytes;
use sigmatag_vector::{TagConfig, VrlTagger};
use vrl::value::Value;

fn main() {
    let shared = std::env::var_os("SIGMATAG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let rules = shared.join("corpus/sigmahq/rules/windows/process_creation");
    let events = shared.join("corpus/events/process_creation.jsonl");
    let Ok(text) = std::fs::read_to_string(&events) else {
        eprintln!("SKIPPED: {} not found", events.display());
        return;
    };
    let start = Instant::now();
    let tagger = VrlTagger::new(
        TagConfig {
            rules: vec![rules],
            mapping: Some("evtx".into()),
            ..TagConfig::default()
        }
        .build()
        .expect("rules load"),
    );
    println!(
        "{} rules loaded in {:.2?}",
        tagger.tagger().set.len(),
        start.elapsed()
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let mut values: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let mut scratch = tagger.scratch();
    let passes = 20;

    let start = Instant::now();
    let mut matched = 0usize;
    for _ in 0..passes {
        for v in values.iter_mut() {
            matched +=
                usize::from(tagger.tag(&mut scratch, v) == sigmatag_vector::Outcome::Matched);
        }
    }
    let vrl_rate = (passes * values.len()) as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut json_matched = 0usize;
    for _ in 0..passes {
        for l in &lines {
            let hits = tagger
                .tagger()
                .set
                .match_record(&JsonBytes(l.as_bytes()), &mut scratch)
                .expect("JSON");
            json_matched += usize::from(!hits.is_empty());
        }
    }
    let json_rate = (passes * lines.len()) as f64 / start.elapsed().as_secs_f64();
    assert_eq!(matched, json_matched);
    println!(
        "{} records x {passes}: vrl values {vrl_rate:.0} records/s (match + tag), JSON bytes {json_rate:.0} records/s (match); {} matched per pass",
        values.len(),
        matched / passes
    );
}
