//! Sigma rule front-end: YAML text in, typed [`Rule`]s (or precise [`RuleError`]s) out.
//!
//! This crate knows nothing about records or speed. It checks what the Sigma v2.1
//! specification says a rule may contain (attributes, detection shapes, modifier chains,
//! the condition grammar) and reports every problem with the file, rule id, YAML location
//! and a reason, so that one bad rule never stops the others from loading.
//!
//! ```
//! use sigmatag_rule::{parse_rules, LoadOptions};
//! let text = "title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\\\cmd.exe'\n  condition: sel\n";
//! let rules = parse_rules(text, "inline", &LoadOptions::default());
//! assert_eq!(rules[0].as_ref().unwrap().detection.search_ids[0].name, "sel");
//! ```
#![deny(missing_docs)]

pub mod ast;
pub mod condition;
pub mod parse;
pub mod yaml;

pub use ast::*;
pub use parse::{parse_rules, LoadOptions, Placeholders};
pub use yaml::Location;

/// Why a rule was rejected, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// The file (or caller-given source name).
    pub source: String,
    /// The rule's `id`, when it got that far.
    pub rule_id: Option<String>,
    /// The rule's `title`, when it got that far.
    pub title: Option<String>,
    /// Line and column in the YAML text.
    pub loc: Location,
    /// Dotted path of the YAML node (`detection.selection.CommandLine|contains`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.loc)?;
        if let Some(id) = &self.rule_id {
            write!(f, " [{id}]")?;
        }
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for RuleError {}
