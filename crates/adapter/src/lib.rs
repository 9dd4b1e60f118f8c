//! What the shipper plugins share: the `sigmatag.yml` settings file, loading rules from
//! directories, and error reporting that writes each kind of error once.
//!
//! Nothing here panics on user input: every failure is a value the plugin turns into a
//! pass-through and one line on stderr.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use sigmatag_matcher::{Pipeline, RuleSet};
use sigmatag_rule::{yaml::NodeKind, LoadOptions, RuleError};

/// The settings file a plugin looks for in each directory it can see.
pub const CONFIG_FILE: &str = "sigmatag.yml";
/// The tag field when none is configured.
pub const DEFAULT_TAG_FIELD: &str = "sigma";

/// What a plugin instance runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Rule files or directories (searched recursively for `.yml`/`.yaml`).
    pub rules: Vec<PathBuf>,
    /// `flat` (default), `evtx`, `ecs-windows`, or a pipeline YAML file.
    pub mapping: Option<String>,
    /// The field added to matching records.
    pub tag_field: String,
    /// Drop records that match no rule.
    pub drop_unmatched: bool,
    /// Values for `%name%` placeholders of the `expand` modifier.
    pub placeholders: Option<PathBuf>,
    /// Files that are not rules even if they sit in a rules directory (the settings file).
    pub not_rules: Vec<PathBuf>,
}

impl Settings {
    /// Defaults: the given rule paths, flat mapping, tag field `sigma`, keep unmatched.
    pub fn with_rules(rules: Vec<PathBuf>) -> Settings {
        Settings {
            rules,
            mapping: None,
            tag_field: DEFAULT_TAG_FIELD.to_string(),
            drop_unmatched: false,
            placeholders: None,
            not_rules: Vec::new(),
        }
    }

    /// Applies one `key: value` setting (the keys of `sigmatag.yml`, also the native
    /// filter's properties). Relative paths are taken from `base`.
    pub fn set(&mut self, key: &str, values: &[&str], base: &Path) -> Result<(), String> {
        let one = || -> Result<&str, String> {
            match values {
                [v] => Ok(v),
                _ => Err(format!("'{key}' takes one value")),
            }
        };
        match key.to_ascii_lowercase().as_str() {
            "rules" => {
                self.rules = values.iter().map(|v| base.join(v)).collect();
            }
            "mapping" => {
                let m = one()?;
                let p = base.join(m);
                self.mapping = Some(if m.contains('/') || p.is_file() {
                    p.display().to_string()
                } else {
                    m.to_string()
                });
            }
            "tag_field" => {
                let f = one()?;
                if f.is_empty() {
                    return Err("'tag_field' must not be empty".into());
                }
                self.tag_field = f.to_string();
            }
            "drop_unmatched" => {
                self.drop_unmatched = match one()?.to_ascii_lowercase().as_str() {
                    "true" | "on" | "yes" | "1" => true,
                    "false" | "off" | "no" | "0" => false,
                    v => return Err(format!("'drop_unmatched': expected true or false, got '{v}'")),
                }
            }
            "placeholders" => {
                let p = base.join(one()?);
                self.not_rules.push(p.clone());
                self.placeholders = Some(p);
            }
            _ => {
                return Err(format!(
                    "unknown setting '{key}' (known: rules, mapping, tag_field, drop_unmatched, placeholders)"
                ))
            }
        }
        Ok(())
    }
}

/// Reads `sigmatag.yml` text. `dir` is the directory holding it: relative paths start there,
/// and without a `rules` key the rules are every rule file under `dir`.
pub fn parse_config(text: &str, dir: &Path) -> Result<Settings, String> {
    let mut s = Settings::with_rules(vec![dir.to_path_buf()]);
    s.not_rules.push(dir.join(CONFIG_FILE));
    let docs = sigmatag_rule::yaml::parse_documents(text)
        .map_err(|e| format!("{CONFIG_FILE}:{}: {}", e.loc, e.message))?;
    let Some(doc) = docs.first() else {
        return Ok(s);
    };
    let entries = match &doc.kind {
        NodeKind::Map(entries) => entries,
        _ if doc.is_null() => return Ok(s),
        _ => {
            return Err(format!(
                "{CONFIG_FILE}:{}: expected a map of settings",
                doc.loc
            ))
        }
    };
    for (k, v) in entries {
        let key = k
            .as_str()
            .ok_or_else(|| format!("{CONFIG_FILE}:{}: a key must be text", k.loc))?;
        let values: Vec<&str> = match &v.kind {
            NodeKind::Seq(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or_else(|| format!("{CONFIG_FILE}:{}: expected text", i.loc))
                })
                .collect::<Result<_, _>>()?,
            NodeKind::Scalar { text, .. } => vec![text.as_str()],
            NodeKind::Map(_) => {
                return Err(format!(
                    "{CONFIG_FILE}:{}: '{key}' takes text or a list",
                    v.loc
                ))
            }
        };
        s.set(key, &values, dir)
            .map_err(|e| format!("{CONFIG_FILE}:{}: {e}", k.loc))?;
    }
    Ok(s)
}

/// Settings for a set of directories (filter_wasm's `Accessible_Paths`): the first
/// directory holding `sigmatag.yml` configures everything; without one, every rule file in
/// every directory is loaded with the defaults.
pub fn settings_for_dirs(dirs: &[PathBuf]) -> Result<Settings, String> {
    for d in dirs {
        let f = d.join(CONFIG_FILE);
        if f.is_file() {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            return parse_config(&text, d).map_err(|e| format!("{}: {e}", d.display()));
        }
    }
    Ok(Settings::with_rules(dirs.to_vec()))
}

/// A compiled rule set with what a plugin needs to tag records.
#[derive(Debug)]
pub struct Engine {
    /// The rules.
    pub set: RuleSet,
    /// JSON of each rule's tag entry (`{"id","title","level","tags"}`).
    pub fragments: Vec<Vec<u8>>,
    /// The tag field as a JSON string literal.
    pub field_json: Vec<u8>,
    /// The settings it was loaded with.
    pub settings: Settings,
}

/// Rules loaded, plus what went wrong on the way (for stderr).
#[derive(Debug)]
pub struct LoadReport {
    /// The engine (possibly with zero rules).
    pub engine: Engine,
    /// Rule files read.
    pub files: usize,
    /// Rejected rules and unreadable files.
    pub rejected: Vec<RuleError>,
}

/// Loads and compiles the rules named by `settings`. Broken rules are reported and skipped;
/// an `Err` means nothing could be loaded (bad mapping, unreadable placeholder file, missing
/// rules path).
pub fn load(settings: Settings) -> Result<LoadReport, String> {
    let pipeline = match &settings.mapping {
        None => Pipeline::flat(),
        Some(m) => {
            let p = Path::new(m);
            if p.is_file() {
                let text = std::fs::read_to_string(p).map_err(|e| format!("{m}: {e}"))?;
                Pipeline::from_yaml(&text).map_err(|e| format!("{m}: {e}"))?
            } else {
                Pipeline::preset(m)?
            }
        }
    };
    let mut opts = LoadOptions::default();
    if let Some(p) = &settings.placeholders {
        opts.placeholders = sigmatag::read_placeholders(p)?;
    }
    let mut files = Vec::new();
    for p in &settings.rules {
        sigmatag::collect_rule_files(p, &mut files).map_err(|e| e.to_string())?;
    }
    files.retain(|f| !settings.not_rules.iter().any(|n| n == f));
    files.dedup();
    let mut texts = Vec::new();
    let mut rejected = Vec::new();
    for f in &files {
        let reject = |reason: String| RuleError {
            source: f.display().to_string(),
            rule_id: None,
            title: None,
            loc: sigmatag_rule::Location { line: 1, col: 1 },
            path: String::new(),
            reason,
        };
        match std::fs::read(f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => texts.push((f.display().to_string(), std::borrow::Cow::Owned(s))),
                Err(_) => rejected.push(reject("file is not UTF-8".into())),
            },
            Err(e) => rejected.push(reject(format!("cannot read: {e}"))),
        }
    }
    let n_files = texts.len();
    let (rules, parse_errors) = sigmatag::parse_texts(texts, &opts);
    let (set, compile_errors) = RuleSet::compile_owned(rules, pipeline);
    rejected.extend(parse_errors);
    rejected.extend(compile_errors);
    Ok(LoadReport {
        engine: Engine::new(set, settings),
        files: n_files,
        rejected,
    })
}

impl Engine {
    /// Wraps a compiled set.
    pub fn new(set: RuleSet, settings: Settings) -> Engine {
        let fragments = sigmatag::tag_fragments(&set);
        let field_json = json_string(&settings.tag_field);
        Engine {
            set,
            fragments,
            field_json,
            settings,
        }
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes())
            }
        }
    }
    out.push(b'"');
    out
}

/// One line for a rejected rule: `file:line:col [id] path: reason`.
pub fn describe(e: &RuleError) -> String {
    let id = e.rule_id.as_deref().unwrap_or("-");
    if e.path.is_empty() {
        format!("{}:{} [{id}]: {}", e.source, e.loc, e.reason)
    } else {
        format!("{}:{} [{id}] {}: {}", e.source, e.loc, e.path, e.reason)
    }
}

/// Kinds of per-record errors a plugin reports (once each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorKind {
    /// The record is not a JSON object / not valid msgpack.
    Unparsable = 0,
    /// The host passed a null record pointer.
    NullRecord = 1,
    /// Rules are not loaded (initialisation failed).
    NotLoaded = 2,
    /// An internal error (state busy, unexpected shape).
    Internal = 3,
    /// A chunk could not be re-packed.
    Repack = 4,
}

/// Writes each kind of error to stderr once, and counts all of them.
#[derive(Debug, Default)]
pub struct Reporter {
    seen: u32,
    /// How many errors of each kind happened.
    pub counts: [u64; 5],
}

impl Reporter {
    /// Records an error; writes `sigmatag: <message>` to stderr the first time this kind
    /// occurs. Returns whether it was written.
    pub fn report(&mut self, kind: ErrorKind, message: &dyn std::fmt::Display) -> bool {
        let k = kind as usize;
        if let Some(c) = self.counts.get_mut(k) {
            *c = c.saturating_add(1);
        }
        let bit = 1u32 << k;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        eprintln!("sigmatag: {message} (reported once; later ones are only counted)");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_settings() {
        let s = parse_config(
            "rules: [win, extra.yml]\nmapping: evtx\ntag_field: detections\ndrop_unmatched: true\n",
            Path::new("/etc/sigma"),
        )
        .unwrap();
        assert_eq!(
            s.rules,
            vec![
                PathBuf::from("/etc/sigma/win"),
                PathBuf::from("/etc/sigma/extra.yml")
            ]
        );
        assert_eq!(s.mapping.as_deref(), Some("evtx"));
        assert_eq!(s.tag_field, "detections");
        assert!(s.drop_unmatched);
        let s = parse_config("", Path::new("/r")).unwrap();
        assert_eq!(s.rules, vec![PathBuf::from("/r")]);
        assert_eq!(s.tag_field, "sigma");
        assert!(!s.drop_unmatched);
        assert!(parse_config("colour: red\n", Path::new("/r"))
            .unwrap_err()
            .contains("unknown setting 'colour'"));
        assert!(parse_config("drop_unmatched: maybe\n", Path::new("/r")).is_err());
        assert!(parse_config("- a\n", Path::new("/r")).is_err());
    }

    #[test]
    fn json_string_escapes() {
        assert_eq!(json_string("a\"b\\c\n"), b"\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn reporter_writes_once_per_kind() {
        let mut r = Reporter::default();
        assert!(r.report(ErrorKind::Unparsable, &"x"));
        assert!(!r.report(ErrorKind::Unparsable, &"x"));
        assert!(r.report(ErrorKind::NullRecord, &"y"));
        assert_eq!(r.counts[0], 2);
    }
}
