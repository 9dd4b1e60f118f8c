//! The configuration every shipper route shares (Vector Lua module, `sigmatag serve`, the
//! custom-Vector `sigma_tag` transform), and the loaded [`Tagger`] it builds.
//!
//! A route maps its own config syntax (Lua table, command-line flags, Vector TOML/YAML) onto
//! [`TagConfig`] and calls [`TagConfig::build`] once; matching then needs only a per-thread
//! [`sigmatag_matcher::Scratch`] from [`Tagger::scratch`].

use std::path::PathBuf;

use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet, Scratch};
use sigmatag_rule::{LoadOptions, RuleError};

use crate::{load, read_placeholders, splice_tag, tag_fragments, Loaded};

/// What to load and how to tag; the same fields in every route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagConfig {
    /// Rule files or directories (searched recursively for `.yml`/`.yaml`). Empty: the
    /// embedded default rule.
    pub rules: Vec<PathBuf>,
    /// Field mapping: `flat` (the default when `None`), `evtx`, `ecs-windows`, or the path of
    /// a pipeline YAML file (docs/mappings.md).
    pub mapping: Option<String>,
    /// Top-level field that receives the list of matched rules (default `sigma`). Each entry
    /// is `{"id","title","level","tags"}`.
    pub tag_field: String,
    /// Drop records no rule matched instead of passing them on. Records that cannot be read
    /// are never dropped: they pass through unchanged.
    pub drop_unmatched: bool,
    /// Values for `%name%` placeholders of the `expand` modifier (a YAML map), if any.
    pub placeholders: Option<PathBuf>,
    /// Refuse to start when any rule is rejected (default: load the rest, report the rest).
    pub strict: bool,
}

impl Default for TagConfig {
    fn default() -> Self {
        TagConfig {
            rules: Vec::new(),
            mapping: None,
            tag_field: "sigma".into(),
            drop_unmatched: false,
            placeholders: None,
            strict: false,
        }
    }
}

/// Resolves a mapping name or pipeline file to a [`Pipeline`].
pub fn resolve_mapping(mapping: Option<&str>) -> Result<Pipeline, String> {
    match mapping {
        None | Some("") => Ok(Pipeline::flat()),
        Some(m) => {
            let p = std::path::Path::new(m);
            if p.is_file() {
                let text = std::fs::read_to_string(p).map_err(|e| format!("{m}: {e}"))?;
                Pipeline::from_yaml(&text).map_err(|e| format!("mapping {m}: {e}"))
            } else {
                Pipeline::preset(m).map_err(|e| format!("mapping {m}: {e}"))
            }
        }
    }
}

impl TagConfig {
    /// Loads and compiles the rules. Errors are complete sentences for the operator: a
    /// missing rule path, an unknown mapping, an unreadable placeholder file, an empty
    /// `tag_field`, or (with `strict`) the first rejected rule.
    pub fn build(&self) -> Result<Tagger, String> {
        if self.tag_field.is_empty() {
            return Err("tag_field must not be empty".into());
        }
        let pipeline = resolve_mapping(self.mapping.as_deref())?;
        let mut opts = LoadOptions::default();
        if let Some(p) = &self.placeholders {
            opts.placeholders = read_placeholders(p)?;
        }
        let Loaded { set, rejected, .. } =
            load(&self.rules, pipeline, &opts).map_err(|e| format!("rules: {e}"))?;
        if self.strict {
            if let Some(e) = rejected.first() {
                return Err(format!(
                    "{} rule(s) rejected (strict), first: {e}",
                    rejected.len()
                ));
            }
        }
        if set.is_empty() {
            return Err(match rejected.first() {
                Some(e) => format!("no rule loaded; {} rejected, first: {e}", rejected.len()),
                None => "no rule loaded (no .yml/.yaml files found)".into(),
            });
        }
        let fragments = tag_fragments(&set);
        let field_json = serde_json::to_vec(&self.tag_field).map_err(|e| e.to_string())?;
        Ok(Tagger {
            set,
            rejected,
            fragments,
            field_json,
            tag_field: self.tag_field.clone(),
            drop_unmatched: self.drop_unmatched,
        })
    }
}

/// A compiled rule set plus the tagging options; immutable and shareable across threads.
#[derive(Debug)]
pub struct Tagger {
    /// The compiled rules.
    pub set: RuleSet,
    /// Rules that were rejected at load (reported by the route, never fatal unless strict).
    pub rejected: Vec<RuleError>,
    fragments: Vec<Vec<u8>>,
    field_json: Vec<u8>,
    tag_field: String,
    drop_unmatched: bool,
}

/// What happened to one NDJSON line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    /// At least one rule matched; the tag was spliced in.
    Matched,
    /// No rule matched; written unchanged (or dropped with `drop_unmatched`).
    Unmatched,
    /// Not a JSON object: written unchanged.
    Unparsable,
}

impl Tagger {
    /// A per-thread scratch for [`Tagger::tag_line`] and the record-based routes.
    pub fn scratch(&self) -> Scratch {
        self.set.scratch()
    }

    /// The configured tag field name.
    pub fn tag_field(&self) -> &str {
        &self.tag_field
    }

    /// Whether unmatched records are dropped.
    pub fn drop_unmatched(&self) -> bool {
        self.drop_unmatched
    }

    /// Tags one NDJSON line (without its newline) exactly as `sigmatag tag` does and appends
    /// the result plus `\n` to `out` (nothing when dropped).
    pub fn tag_line(&self, scratch: &mut Scratch, line: &[u8], out: &mut Vec<u8>) -> LineOutcome {
        let outcome = match self.set.match_record(&JsonBytes(line), scratch) {
            Ok([]) => {
                if self.drop_unmatched {
                    return LineOutcome::Unmatched;
                }
                out.extend_from_slice(line);
                LineOutcome::Unmatched
            }
            Ok(hits) => {
                splice_tag(line, &self.field_json, hits, &self.fragments, out);
                LineOutcome::Matched
            }
            Err(_) => {
                out.extend_from_slice(line);
                LineOutcome::Unparsable
            }
        };
        out.push(b'\n');
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_HIT: &[u8] = br#"{"Image":"C:\\Windows\\System32\\iexpress.exe","CommandLine":"iexpress.exe /N /Q /M C:\\ProgramData\\x.sed"}"#;

    #[test]
    fn tag_line_matches_unmatched_unparsable_and_drop() {
        let t = TagConfig::default().build().unwrap();
        let mut s = t.scratch();
        let mut out = Vec::new();
        assert_eq!(t.tag_line(&mut s, SEED_HIT, &mut out), LineOutcome::Matched);
        assert!(out.ends_with(b"]}\n"), "{}", String::from_utf8_lossy(&out));
        out.clear();
        assert_eq!(
            t.tag_line(&mut s, b"{\"a\":1}", &mut out),
            LineOutcome::Unmatched
        );
        assert_eq!(out, b"{\"a\":1}\n");
        out.clear();
        assert_eq!(
            t.tag_line(&mut s, b"not json", &mut out),
            LineOutcome::Unparsable
        );
        assert_eq!(out, b"not json\n");

        let cfg = TagConfig {
            drop_unmatched: true,
            ..TagConfig::default()
        };
        let t = cfg.build().unwrap();
        let mut s = t.scratch();
        out.clear();
        assert_eq!(
            t.tag_line(&mut s, b"{\"a\":1}", &mut out),
            LineOutcome::Unmatched
        );
        assert!(out.is_empty());
        assert_eq!(
            t.tag_line(&mut s, b"[1]", &mut out),
            LineOutcome::Unparsable
        );
        assert_eq!(out, b"[1]\n");
    }

    #[test]
    fn build_errors_are_sentences() {
        let e = TagConfig {
            mapping: Some("no-such-mapping".into()),
            ..TagConfig::default()
        }
        .build()
        .unwrap_err();
        assert!(e.contains("no-such-mapping"), "{e}");
        let e = TagConfig {
            rules: vec!["/nonexistent/sigma".into()],
            ..TagConfig::default()
        }
        .build()
        .unwrap_err();
        assert!(e.contains("/nonexistent/sigma"), "{e}");
        let e = TagConfig {
            tag_field: String::new(),
            ..TagConfig::default()
        }
        .build()
        .unwrap_err();
        assert!(e.contains("tag_field"), "{e}");
    }
}
