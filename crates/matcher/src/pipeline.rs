//! Field mapping and logsource conditions: where a record keeps the Sigma field `Image`,
//! and which records a `process_creation` rule may look at.
//!
//! A [`Pipeline`] is data (YAML, format in `docs/mappings.md`); the built-in presets are
//! embedded YAML files in `presets/`, so a user can copy one and adapt it.

use std::collections::HashMap;

use sigmatag_rule::parse::scalar_value;
use sigmatag_rule::yaml::{parse_documents, Node, NodeKind};
use sigmatag_rule::Value;

/// One segment of a record path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// Any key (`*` in a path).
    Any,
}

/// A path from the record's top-level object to a value.
pub type Path = Vec<Segment>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum TplSeg {
    Key(String),
    Any,
    Field,
}

/// How record keys are compared with path segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCompare {
    /// Byte for byte.
    Exact,
    /// Spaces in record keys are ignored (EVTX's `Source Name` is the Sigma field `SourceName`).
    StripSpaces,
}

/// What happens to rules whose logsource no pipeline entry fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// The rule is rejected: this mapping cannot say which records it applies to.
    Reject,
    /// The rule sees every record.
    All,
}

/// One way a logsource is recognised in records.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Sigma field -> accepted values (fields AND-ed, values OR-ed). Empty: every record.
    pub conditions: Vec<(String, Vec<Value>)>,
    /// Sigma field renames for records of this variant.
    pub rename: HashMap<String, String>,
}

/// A logsource entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsourceEntry {
    /// `product` (or `*`).
    pub product: Option<String>,
    /// `category` (or `*`).
    pub category: Option<String>,
    /// `service` (or `*`).
    pub service: Option<String>,
    /// The variants, OR-ed.
    pub when: Vec<Variant>,
}

/// A field mapping with logsource conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Its name.
    pub name: String,
    /// How keys compare.
    pub key_compare: KeyCompare,
    default_paths: Vec<Vec<TplSeg>>,
    fields: HashMap<String, Vec<Vec<TplSeg>>>,
    /// Logsource entries in order.
    pub logsources: Vec<LogsourceEntry>,
    /// What happens to rules no entry fits.
    pub unmatched: Unmatched,
}

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &["flat", "evtx", "ecs-windows"];

fn parse_template(t: &str) -> Vec<TplSeg> {
    t.split('.')
        .map(|s| match s {
            "*" => TplSeg::Any,
            "{field}" => TplSeg::Field,
            _ => TplSeg::Key(s.to_string()),
        })
        .collect()
}

/// Every way of reading a dotted Sigma name as nested keys (`a.b` -> `[a.b]`, `[a, b]`).
fn splits(name: &str) -> Vec<Vec<String>> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 6 {
        return vec![vec![name.to_string()]];
    }
    let mut out = Vec::new();
    let gaps = parts.len() - 1;
    for mask in 0..(1u32 << gaps) {
        let mut segs = vec![parts[0].to_string()];
        for (g, p) in parts[1..].iter().enumerate() {
            if mask & (1 << g) != 0 {
                segs.push(p.to_string());
            } else {
                let last = segs.last_mut().expect("one segment");
                last.push('.');
                last.push_str(p);
            }
        }
        out.push(segs);
    }
    out
}

impl Pipeline {
    /// The flat mapping: Sigma names at the top level, every rule sees every record.
    pub fn flat() -> Pipeline {
        Pipeline {
            name: "flat".into(),
            key_compare: KeyCompare::Exact,
            default_paths: vec![vec![TplSeg::Field]],
            fields: HashMap::new(),
            logsources: Vec::new(),
            unmatched: Unmatched::All,
        }
    }

    /// A built-in preset by name (`flat`, `evtx`, `ecs-windows`).
    pub fn preset(name: &str) -> Result<Pipeline, String> {
        match name {
            "flat" | "none" => Ok(Pipeline::flat()),
            "evtx" => Pipeline::from_yaml(include_str!("../presets/evtx.yml")),
            "ecs-windows" | "ecs" => {
                Pipeline::from_yaml(include_str!("../presets/ecs-windows.yml"))
            }
            _ => Err(format!(
                "unknown mapping '{name}' (built in: {}; or give a pipeline YAML file)",
                PRESETS.join(", ")
            )),
        }
    }

    /// Parses a pipeline from its YAML text.
    pub fn from_yaml(text: &str) -> Result<Pipeline, String> {
        let docs = parse_documents(text).map_err(|e| format!("{}: {}", e.loc, e.message))?;
        let doc = docs.first().ok_or("empty pipeline file")?;
        let err = |n: &Node, m: &str| format!("{}: {m}", n.loc);
        let text_of = |n: &Node| {
            n.as_str()
                .map(str::to_string)
                .ok_or_else(|| err(n, "expected text"))
        };
        let list_of = |n: &Node| -> Result<Vec<String>, String> {
            match &n.kind {
                NodeKind::Seq(items) => items.iter().map(text_of).collect(),
                _ => Ok(vec![text_of(n)?]),
            }
        };
        let name = doc
            .get("name")
            .map(text_of)
            .transpose()?
            .unwrap_or_else(|| "custom".into());
        let key_compare = match doc.get("key_compare").and_then(|n| n.as_str()) {
            None | Some("exact") => KeyCompare::Exact,
            Some("strip_spaces") => KeyCompare::StripSpaces,
            Some(_) => {
                return Err(err(
                    doc.get("key_compare").expect("present"),
                    "key_compare: exact or strip_spaces",
                ))
            }
        };
        let default_paths = match doc.get("default_paths") {
            Some(n) => list_of(n)?.iter().map(|t| parse_template(t)).collect(),
            None => vec![vec![TplSeg::Field]],
        };
        let mut fields = HashMap::new();
        if let Some(n) = doc.get("fields") {
            let NodeKind::Map(entries) = &n.kind else {
                return Err(err(n, "fields must be a map"));
            };
            for (k, v) in entries {
                let paths = list_of(v)?.iter().map(|t| parse_template(t)).collect();
                fields.insert(text_of(k)?, paths);
            }
        }
        let mut logsources = Vec::new();
        if let Some(n) = doc.get("logsources") {
            let NodeKind::Seq(items) = &n.kind else {
                return Err(err(n, "logsources must be a list"));
            };
            for it in items {
                let ls = it
                    .get("logsource")
                    .ok_or_else(|| err(it, "entry without 'logsource'"))?;
                let get = |k: &str| ls.get(k).map(text_of).transpose();
                let mut when = Vec::new();
                if let Some(w) = it.get("when") {
                    let NodeKind::Seq(alts) = &w.kind else {
                        return Err(err(w, "'when' must be a list"));
                    };
                    for a in alts {
                        let mut conditions = Vec::new();
                        if let Some(c) = a.get("conditions") {
                            if let NodeKind::Map(entries) = &c.kind {
                                for (k, v) in entries {
                                    let vals = match &v.kind {
                                        NodeKind::Seq(xs) => {
                                            xs.iter().filter_map(scalar_value).collect()
                                        }
                                        _ => scalar_value(v).into_iter().collect(),
                                    };
                                    conditions.push((text_of(k)?, vals));
                                }
                            }
                        }
                        let mut rename = HashMap::new();
                        if let Some(NodeKind::Map(entries)) = a.get("rename").map(|r| &r.kind) {
                            for (k, v) in entries {
                                rename.insert(text_of(k)?, text_of(v)?);
                            }
                        }
                        when.push(Variant { conditions, rename });
                    }
                }
                if when.is_empty() {
                    when.push(Variant {
                        conditions: Vec::new(),
                        rename: HashMap::new(),
                    });
                }
                logsources.push(LogsourceEntry {
                    product: get("product")?,
                    category: get("category")?,
                    service: get("service")?,
                    when,
                });
            }
        }
        let unmatched = match doc.get("unmatched").and_then(|n| n.as_str()) {
            None | Some("reject") => Unmatched::Reject,
            Some("all") => Unmatched::All,
            Some(_) => {
                return Err(err(
                    doc.get("unmatched").expect("present"),
                    "unmatched: reject or all",
                ))
            }
        };
        Ok(Pipeline {
            name,
            key_compare,
            default_paths,
            fields,
            logsources,
            unmatched,
        })
    }

    /// The entry that decides a rule's logsource, if any.
    pub fn logsource_entry(&self, ls: &sigmatag_rule::LogSource) -> Option<&LogsourceEntry> {
        self.logsource_entry_index(ls).map(|i| &self.logsources[i])
    }

    /// The index of the entry that decides a rule's logsource, if any.
    pub fn logsource_entry_index(&self, ls: &sigmatag_rule::LogSource) -> Option<usize> {
        fn fits(entry: &Option<String>, rule: &Option<String>) -> bool {
            match (entry, rule) {
                (Some(e), _) if e == "*" => true,
                (Some(e), Some(r)) => e.eq_ignore_ascii_case(r),
                (None, None) => true,
                _ => false,
            }
        }
        self.logsources.iter().position(|e| {
            fits(&e.product, &ls.product)
                && fits(&e.category, &ls.category)
                && fits(&e.service, &ls.service)
        })
    }

    /// The record paths of a Sigma field (after any rename).
    pub fn paths(&self, field: &str) -> Vec<Path> {
        let templates = self.fields.get(field).unwrap_or(&self.default_paths);
        let field_splits = splits(field);
        let mut out: Vec<Path> = Vec::new();
        for t in templates {
            let mut partial: Vec<Path> = vec![Vec::new()];
            for seg in t {
                match seg {
                    TplSeg::Key(k) => partial
                        .iter_mut()
                        .for_each(|p| p.push(Segment::Key(k.clone()))),
                    TplSeg::Any => partial.iter_mut().for_each(|p| p.push(Segment::Any)),
                    TplSeg::Field => {
                        let mut next = Vec::new();
                        for p in &partial {
                            for s in &field_splits {
                                let mut q = p.clone();
                                q.extend(s.iter().map(|x| Segment::Key(x.clone())));
                                next.push(q);
                            }
                        }
                        partial = next;
                    }
                }
            }
            for p in partial {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_paths_split_dots() {
        let p = Pipeline::flat();
        let paths = p.paths("a.b");
        assert_eq!(paths.len(), 2);
        assert!(paths.contains(&vec![Segment::Key("a.b".into())]));
        assert!(paths.contains(&vec![Segment::Key("a".into()), Segment::Key("b".into())]));
    }

    #[test]
    fn presets_load() {
        for name in PRESETS {
            let p = Pipeline::preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&p.name, name);
        }
        assert!(Pipeline::preset("nope").is_err());
    }
}
