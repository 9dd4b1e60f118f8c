//! Fuzz target: the JSON record reader (`JsonBytes`) as the CLI drives it.
//!
//! The input is one NDJSON line. It is matched against a small fixed rule set (the seed
//! rule under `evtx` and `flat`, plus a synthetic rule using keywords, dotted and spaced
//! field names, a regex, a cidr and a fieldref) exactly as `sigmatag tag` does.
//!
//! Properties:
//! - nothing panics;
//! - the reader accepts exactly the JSON objects serde_json accepts, except for two
//!   documented differences: lone surrogates in `\u` escapes (we read them as U+FFFD,
//!   serde_json refuses them), numbers beyond the range of f64 (we keep the text as
//!   written, serde_json refuses them) and serde_json's own recursion limit;
//! - a tagged line (the CLI's `splice_tag` output) is still valid JSON with the tag field
//!   added, whenever the input line was valid for serde_json.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sigmatag::{splice_tag, tag_fragments, DEFAULT_RULE};
use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet, Scratch};
use sigmatag_rule::{parse_rules, LoadOptions};

const EXTRA: &str = r#"
title: fuzz keywords and odd fields
id: 00000000-0000-0000-0000-000000000001
logsource: {product: windows}
detection:
  keywords:
    - 'evil'
    - '*\u*'
  odd:
    'a.b|contains': 'x'
    'key with spaces': 'v'
  re:
    CommandLine|re: '(?i)^.*(a|b)+\d{2,}$'
  net:
    Ip|cidr: ['10.0.0.0/8', 'fe80::/10']
  ref:
    User|fieldref: TargetUser
  num:
    EventID|gte: 4000
  condition: keywords or odd or re or net or ref or num
level: low
"#;

struct Sets {
    sets: Vec<(RuleSet, Vec<Vec<u8>>)>,
    scratches: std::sync::Mutex<Vec<Scratch>>,
}

fn sets() -> &'static Sets {
    static SETS: OnceLock<Sets> = OnceLock::new();
    SETS.get_or_init(|| {
        let mut rules = Vec::new();
        for text in [DEFAULT_RULE, EXTRA] {
            for r in parse_rules(text, "fuzz", &LoadOptions::default()) {
                rules.push(r.expect("fixed rule parses"));
            }
        }
        let sets: Vec<(RuleSet, Vec<Vec<u8>>)> = ["flat", "evtx", "ecs-windows"]
            .iter()
            .map(|p| {
                let (set, errors) = RuleSet::compile(&rules, Pipeline::preset(p).expect("preset"));
                assert!(errors.is_empty(), "{errors:?}");
                let frags = tag_fragments(&set);
                (set, frags)
            })
            .collect();
        let scratches = std::sync::Mutex::new(sets.iter().map(|(s, _)| s.scratch()).collect());
        Sets { sets, scratches }
    })
}

fn has_lone_surrogate_escape(data: &[u8]) -> bool {
    // Conservative: any \uD8xx-\uDFxx escape at all.
    data.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && matches!(w[2], b'd' | b'D')
            && matches!(w[3], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
    })
}

fuzz_target!(|data: &[u8]| {
    // The CLI strips the newline; a line never contains one.
    let line = data.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let serde: Option<Value> = serde_json::from_slice::<Value>(line)
        .ok()
        .filter(Value::is_object);
    let mut out = Vec::new();
    let sets = sets();
    let mut scratches = sets.scratches.lock().unwrap_or_else(|e| e.into_inner());
    for ((set, frags), scratch) in sets.sets.iter().zip(scratches.iter_mut()) {
        let result = set.match_record(&JsonBytes(line), scratch);
        match (&result, &serde) {
            (Err(e), Some(_)) => {
                assert!(
                    e.message.contains("nesting"),
                    "reader rejects what serde_json accepts: {e} on {:?}",
                    String::from_utf8_lossy(line)
                );
            }
            (Ok(_), None) => {
                // serde_json's own limits: its recursion limit, and numbers beyond f64
                // (`1e400`); our reader keeps a number's text as written.
                let serde_limit = serde_json::from_slice::<Value>(line)
                    .err()
                    .is_some_and(|e| {
                        let e = e.to_string();
                        e.contains("recursion limit") || e.contains("number out of range")
                    });
                assert!(
                    has_lone_surrogate_escape(line) || serde_limit,
                    "reader accepts what serde_json rejects: {:?}",
                    String::from_utf8_lossy(line)
                );
            }
            _ => {}
        }
        if let Ok(hits) = result {
            if !hits.is_empty() {
                let hits = hits.to_vec();
                out.clear();
                splice_tag(line, b"\"sigma\"", &hits, frags, &mut out);
                if serde.is_some() {
                    let tagged: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
                        panic!(
                            "tagged line is not JSON ({e}): {:?}",
                            String::from_utf8_lossy(&out)
                        )
                    });
                    let tag = tagged
                        .get("sigma")
                        .and_then(Value::as_array)
                        .expect("tag field");
                    assert_eq!(tag.len(), hits.len());
                }
            }
        }
        // The same record through serde_json's Value (another Record implementation).
        if let Some(v) = &serde {
            let _ = set.match_record(v, scratch);
        }
    }
});
