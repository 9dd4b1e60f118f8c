//! The reference oracle: a deliberately simple, obviously-correct evaluator of parsed Sigma
//! rules over JSON records.
//!
//! It is written straight from the Sigma specification and `docs/semantics.md`, and shares
//! no interpretation code with the fast matcher (`sigmatag-matcher`): property tests and
//! fuzzing run both on the same rules and records and compare the answers. Clarity beats
//! speed here: values are re-read, patterns re-built and regexes re-compiled on every call;
//! wildcard matching is a plain dynamic program over characters.
//!
//! ```
//! use sigmatag_rule::{parse_rules, LoadOptions};
//! let text = "title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n";
//! let rule = parse_rules(text, "inline", &LoadOptions::default()).remove(0).unwrap();
//! let record = serde_json::json!({"Image": "C:\\Windows\\System32\\CMD.EXE"});
//! assert!(sigmatag_reference::matches(&rule, &record).unwrap());
//! ```
#![deny(missing_docs)]

mod encode;
mod eval;
mod number;
mod pattern;
mod record;
mod time;

#[cfg(test)]
mod tests;

use sigmatag_rule::{Alternative, Condition, Quantifier, Rule, SearchId};

/// Why a rule cannot be evaluated (an invalid regex or cidr, a wildcard in an encoded
/// value, an unknown identifier in the condition, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    /// What is wrong.
    pub message: String,
}

impl ReferenceError {
    fn new(message: impl Into<String>) -> Self {
        ReferenceError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReferenceError {}

/// Checks, independently of any record, that every part of the rule can be evaluated:
/// regexes compile, cidrs parse, encoded values have no wildcards, `windash` values have at
/// most 5 flag positions, the condition names only existing identifiers.
/// [`matches`] calls this first, so its errors never depend on the record.
pub fn validate(rule: &Rule) -> Result<(), ReferenceError> {
    for sid in &rule.detection.search_ids {
        validate_search_id(sid)?;
    }
    validate_condition(rule, &rule.detection.condition)
}

fn validate_search_id(sid: &SearchId) -> Result<(), ReferenceError> {
    for alt in &sid.alternatives {
        match alt {
            Alternative::Keyword(v) => eval::check_test(None, &[], std::slice::from_ref(v))?,
            Alternative::AllOf(tests) => {
                for t in tests {
                    eval::check_test(t.field.as_deref(), &t.modifiers, &t.values)?;
                }
            }
        }
    }
    Ok(())
}

fn find<'r>(rule: &'r Rule, name: &str) -> Result<&'r SearchId, ReferenceError> {
    rule.detection
        .search_ids
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ReferenceError::new(format!("unknown search identifier '{name}'")))
}

fn validate_condition(rule: &Rule, c: &Condition) -> Result<(), ReferenceError> {
    match c {
        Condition::Id(name) => find(rule, name).map(|_| ()),
        Condition::Not(inner) => validate_condition(rule, inner),
        Condition::And(cs) | Condition::Or(cs) => {
            cs.iter().try_for_each(|c| validate_condition(rule, c))
        }
        Condition::Of { ids, .. } => ids.iter().try_for_each(|id| find(rule, id).map(|_| ())),
    }
}

/// Does `rule` match `record` (a JSON object), with the flat field lookup of
/// `docs/semantics.md`?
pub fn matches(rule: &Rule, record: &serde_json::Value) -> Result<bool, ReferenceError> {
    if !record.is_object() {
        return Err(ReferenceError::new("a record must be a JSON object"));
    }
    validate(rule)?;
    eval_condition(rule, &rule.detection.condition, record)
}

/// Does one search identifier hold for `record`? (An OR of its alternatives; a map
/// alternative is the AND of its field tests; a keyword is searched in every string,
/// number and boolean of the record.)
pub fn search_id_matches(
    search_id: &SearchId,
    record: &serde_json::Value,
) -> Result<bool, ReferenceError> {
    validate_search_id(search_id)?;
    let mut any = false;
    for alt in &search_id.alternatives {
        let holds = match alt {
            Alternative::Keyword(v) => eval::eval_test(record, None, &[], std::slice::from_ref(v))?,
            Alternative::AllOf(tests) => {
                let mut all = true;
                for t in tests {
                    all &= eval::eval_test(record, t.field.as_deref(), &t.modifiers, &t.values)?;
                }
                all
            }
        };
        any |= holds;
    }
    Ok(any)
}

fn eval_condition(
    rule: &Rule,
    c: &Condition,
    record: &serde_json::Value,
) -> Result<bool, ReferenceError> {
    let id = |name: &str| search_id_matches(find(rule, name)?, record);
    Ok(match c {
        Condition::Id(name) => id(name)?,
        Condition::Not(inner) => !eval_condition(rule, inner, record)?,
        Condition::And(cs) => {
            let rs = cs
                .iter()
                .map(|c| eval_condition(rule, c, record))
                .collect::<Result<Vec<_>, _>>()?;
            rs.iter().all(|r| *r)
        }
        Condition::Or(cs) => {
            let rs = cs
                .iter()
                .map(|c| eval_condition(rule, c, record))
                .collect::<Result<Vec<_>, _>>()?;
            rs.iter().any(|r| *r)
        }
        Condition::Of { quantifier, ids } => {
            let rs = ids.iter().map(|n| id(n)).collect::<Result<Vec<_>, _>>()?;
            let hits = rs.iter().filter(|r| **r).count();
            match quantifier {
                Quantifier::AtLeast(n) => hits >= *n as usize,
                Quantifier::All => hits == rs.len(),
            }
        }
    })
}
