//! The JSON byte reader (the SIMD stage-one / stage-two reader `match_record` uses for
//! `JsonBytes`) gives the same matches as walking the same record through the visitor seam,
//! and as walking its `serde_json::Value`: for every real event, under every mapping, with
//! every active SigmaHQ rule loaded. Also over the events with bytes cut off or changed,
//! where both readers must agree on which lines are unreadable.

use sigmatag::load;
use sigmatag_matcher::{JsonBytes, Pipeline, Record, RecordError, RuleSet, Visitor};
use sigmatag_suite::{example_load_options, shared_corpus, ACTIVE_RULE_DIRS};

/// JSON bytes read through `Record::walk` only (the visitor path), never the byte reader.
struct Walked<'a>(&'a [u8]);

impl Record for Walked<'_> {
    fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError> {
        JsonBytes(self.0).walk(visitor)
    }
}

fn rule_set(shared: &std::path::Path, mapping: &str) -> RuleSet {
    let opts = example_load_options();
    let dirs: Vec<_> = ACTIVE_RULE_DIRS
        .iter()
        .map(|d| shared.join("corpus/sigmahq").join(d))
        .collect();
    load(&dirs, Pipeline::preset(mapping).expect("preset"), &opts)
        .expect("rules")
        .set
}

#[test]
fn byte_reader_equals_walks_on_real_events() {
    let Some(shared) = shared_corpus() else {
        return;
    };
    let mut lines = Vec::new();
    for f in ["windows-evtx.jsonl", "process_creation.jsonl"] {
        let text = std::fs::read(shared.join("corpus/events").join(f)).expect("events");
        lines.extend(
            text.split(|c| *c == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    for mapping in ["evtx", "flat", "ecs-windows"] {
        let set = rule_set(&shared, mapping);
        let (mut a, mut b, mut c) = (set.scratch(), set.scratch(), set.scratch());
        let mut hits = 0;
        for (n, line) in lines.iter().enumerate() {
            let fast = set
                .match_record(&JsonBytes(line), &mut a)
                .expect("valid")
                .to_vec();
            let walked = set.match_record(&Walked(line), &mut b).expect("valid");
            assert_eq!(fast, walked, "{mapping}, line {n}");
            let value: serde_json::Value = serde_json::from_slice(line).expect("JSON");
            let tree = set.match_record(&value, &mut c).expect("valid");
            assert_eq!(fast, tree, "{mapping}, line {n}");
            hits += fast.len();
        }
        eprintln!(
            "{mapping}: {} rules, {} records, {hits} rule hits: byte reader == walk == Value",
            set.len(),
            lines.len()
        );
        assert!(hits > 0, "{mapping}: no rule matched at all");
    }
}

/// Bytes written into or inserted in events to damage them: JSON's structural characters,
/// a control byte, an invalid UTF-8 byte, a space and a letter.
const DAMAGE: &[u8] = b"\"\\{}[],:\x01\xff x";

#[test]
fn byte_reader_equals_walk_on_damaged_events() {
    let Some(shared) = shared_corpus() else {
        return;
    };
    let text = std::fs::read(shared.join("corpus/events/windows-evtx.jsonl")).expect("events");
    let set = rule_set(&shared, "evtx");
    let (mut a, mut b) = (set.scratch(), set.scratch());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut unreadable, mut readable) = (0, 0);
    for line in text
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .step_by(7)
    {
        for _ in 0..4 {
            let mut l = line.to_vec();
            let at = rand() as usize % l.len();
            match rand() % 4 {
                0 => l.truncate(at),
                1 => l[at] = DAMAGE[rand() as usize % DAMAGE.len()],
                2 => {
                    l.remove(at);
                }
                _ => l.insert(at, DAMAGE[rand() as usize % DAMAGE.len()]),
            }
            let fast = set
                .match_record(&JsonBytes(&l), &mut a)
                .map(<[u32]>::to_vec);
            let walked = set.match_record(&Walked(&l), &mut b).map(<[u32]>::to_vec);
            assert_eq!(
                fast.is_ok(),
                walked.is_ok(),
                "verdicts differ ({:?} / {:?}) on {}",
                fast.as_ref().err(),
                walked.as_ref().err(),
                String::from_utf8_lossy(&l)
            );
            match (fast, walked) {
                (Ok(x), Ok(y)) => {
                    assert_eq!(x, y, "{}", String::from_utf8_lossy(&l));
                    readable += 1;
                }
                _ => unreadable += 1,
            }
        }
    }
    eprintln!("damaged events: {readable} still readable, {unreadable} unreadable, readers agree");
    assert!(readable > 1000 && unreadable > 1000);
}
