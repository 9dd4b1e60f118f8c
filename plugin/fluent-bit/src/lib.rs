//! sigmatag for Fluent Bit's `filter_wasm` (JSON event format).
//!
//! The module exports `sigmatag_filter` (the filter function), `malloc`/`free` (so the host
//! copies every record into module memory, whatever its size) and `_initialize` (loads the
//! rules once, from the directories listed in `Accessible_Paths`). See `docs/fluent-bit.md`.
//!
//! Contract with the host (facts in `shared/design/PLUGINS.md`): the record arrives as a
//! NUL-terminated compact JSON object; the function returns a pointer to a NUL-terminated
//! JSON object (the new body), the record pointer itself (unchanged), or `""` (drop).
//! Anything else makes Fluent Bit abort, so every path here returns one of those three, and
//! nothing on the record path can panic: with `panic=abort` on wasm a panic is a trap and
//! the record would be lost.
#![deny(missing_docs)]

use sigmatag_adapter::{Engine, ErrorKind, Reporter};
use sigmatag_matcher::{JsonBytes, Scratch};

/// What the filter decided for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the record through unchanged (no match, or not parsable).
    Keep,
    /// The tagged record is in [`JsonFilter::output`] (NUL-terminated).
    Tagged,
    /// Drop the record (no match and `drop_unmatched`).
    Drop,
}

/// The filter: a compiled rule set, its scratch, and one reusable output buffer.
#[derive(Debug)]
pub struct JsonFilter {
    engine: Engine,
    scratch: Scratch,
    out: Vec<u8>,
    /// Errors met on records (written once per kind).
    pub reporter: Reporter,
    /// Records seen, tagged.
    pub counts: (u64, u64),
}

impl JsonFilter {
    /// A filter over loaded rules.
    pub fn new(engine: Engine) -> JsonFilter {
        let scratch = engine.set.scratch();
        JsonFilter {
            engine,
            scratch,
            out: Vec::new(),
            reporter: Reporter::default(),
            counts: (0, 0),
        }
    }

    /// The rules.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Filters one record body (compact JSON, without the host's trailing NUL).
    pub fn filter(&mut self, record: &[u8]) -> Verdict {
        self.counts.0 += 1;
        let hits = match self
            .engine
            .set
            .match_record(&JsonBytes(record), &mut self.scratch)
        {
            Ok(h) => h,
            Err(e) => {
                self.reporter.report(
                    ErrorKind::Unparsable,
                    &format_args!("a record is not a JSON object ({e}); passed through unchanged"),
                );
                return Verdict::Keep;
            }
        };
        if hits.is_empty() {
            return if self.engine.settings.drop_unmatched {
                Verdict::Drop
            } else {
                Verdict::Keep
            };
        }
        self.counts.1 += 1;
        self.out.clear();
        sigmatag::splice_tag(
            record,
            &self.engine.field_json,
            hits,
            &self.engine.fragments,
            &mut self.out,
        );
        self.out.push(0);
        Verdict::Tagged
    }

    /// The last tagged record, NUL-terminated.
    pub fn output(&self) -> &[u8] {
        &self.out
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(test)]
// ok: unwrap in this test module: a failure is a test failure.
mod tests {
    use super::*;
    use sigmatag_adapter::Settings;

    fn filter(drop: bool) -> JsonFilter {
        let rules: Vec<_> =
            sigmatag_rule::parse_rules(sigmatag::DEFAULT_RULE, "d", &Default::default())
                .into_iter()
                .map(|r| r.expect("fixture rule parses"))
                .collect();
        let (set, errs) =
            sigmatag_matcher::RuleSet::compile(&rules, sigmatag_matcher::Pipeline::flat());
        assert!(errs.is_empty());
        let mut s = Settings::with_rules(vec![]);
        s.drop_unmatched = drop;
        JsonFilter::new(Engine::new(set, s))
    }

    const HIT: &[u8] = br#"{"Image":"C:\\Windows\\System32\\iexpress.exe","CommandLine":"iexpress.exe /N /Q /M C:\\ProgramData\\x.sed"}"#;
    const MISS: &[u8] = br#"{"Image":"C:\\Windows\\System32\\cmd.exe"}"#;

    #[test]
    fn tags_keeps_and_drops() {
        let mut f = filter(false);
        assert_eq!(f.filter(HIT), Verdict::Tagged);
        let out = f.output();
        assert_eq!(out.last(), Some(&0));
        let body = std::str::from_utf8(&out[..out.len() - 1]).expect("module output is UTF-8");
        assert!(body.starts_with(&String::from_utf8_lossy(&HIT[..HIT.len() - 1]).to_string()));
        assert!(body.contains(r#","sigma":[{"id":"b2b048b0-7857-4380-b0fb-d3f0ab820b71""#));
        assert_eq!(f.filter(MISS), Verdict::Keep);
        assert_eq!(f.filter(b"not json"), Verdict::Keep);
        assert_eq!(f.filter(b"[1,2]"), Verdict::Keep);
        assert_eq!(f.reporter.counts[ErrorKind::Unparsable as usize], 2);
        let mut f = filter(true);
        assert_eq!(f.filter(MISS), Verdict::Drop);
        assert_eq!(
            f.filter(b"{broken"),
            Verdict::Keep,
            "unparsable is never dropped"
        );
    }
}
