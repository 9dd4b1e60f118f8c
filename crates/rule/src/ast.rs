//! The typed form of a Sigma rule: what the YAML says, checked, with nothing evaluated yet.
//!
//! Values keep the rule author's text (wildcards and escapes unresolved) so that each
//! consumer (the fast matcher, the reference oracle) interprets the spec on its own. Only
//! `expand` placeholders are resolved here, because that depends on configuration.

use crate::yaml::Location;

/// A parsed Sigma detection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `title` (required).
    pub title: String,
    /// `id` (a UUID by convention; empty when the rule has none).
    pub id: String,
    /// `name` (v2: a unique human-readable name, used by correlations).
    pub name: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `license`.
    pub license: Option<String>,
    /// `author`.
    pub author: Option<String>,
    /// `references`.
    pub references: Vec<String>,
    /// `date`.
    pub date: Option<String>,
    /// `modified`.
    pub modified: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `level`.
    pub level: Option<String>,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// `fields`.
    pub fields: Vec<String>,
    /// `scope`.
    pub scope: Vec<String>,
    /// `related`.
    pub related: Vec<Related>,
    /// `logsource`.
    pub logsource: LogSource,
    /// `detection`.
    pub detection: Detection,
    /// Where the rule came from (file path or a caller-given name).
    pub source: String,
}

/// One entry of `related`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// The related rule's id.
    pub id: String,
    /// `derived`, `obsolete`, `merged`, `renamed` or `similar`.
    pub kind: String,
}

/// `logsource`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSource {
    /// `category`.
    pub category: Option<String>,
    /// `product`.
    pub product: Option<String>,
    /// `service`.
    pub service: Option<String>,
    /// `definition`.
    pub definition: Option<String>,
    /// Where the `logsource` key is (1:1 when the rule has none).
    pub loc: Location,
}

/// `detection`: named search identifiers and the condition over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Search identifiers in document order.
    pub search_ids: Vec<SearchId>,
    /// The condition; a list of conditions is OR-ed into one.
    pub condition: Condition,
    /// `timeframe`, kept for correlation use.
    pub timeframe: Option<String>,
}

/// A named search identifier (`selection: ...`).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchId {
    /// The identifier.
    pub name: String,
    /// OR of alternatives (a single map is one alternative).
    pub alternatives: Vec<Alternative>,
    /// Location of the identifier's key.
    pub loc: Location,
}

/// One OR-ed alternative of a search identifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Alternative {
    /// A map: all field tests must hold.
    AllOf(Vec<FieldTest>),
    /// A keyword: the value must be found in the record's text values.
    Keyword(Value),
}

/// One `field|modifier|...: value(s)` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldTest {
    /// The field; `None` for a field-less key such as `'|all':` (a keyword test).
    pub field: Option<String>,
    /// Modifiers in order of application.
    pub modifiers: Vec<Modifier>,
    /// The values (a scalar becomes a one-element list). OR-ed unless `All` is present.
    pub values: Vec<Value>,
    /// Location of the key.
    pub loc: Location,
}

impl FieldTest {
    /// Whether the modifier chain contains `m`.
    pub fn has(&self, m: Modifier) -> bool {
        self.modifiers.contains(&m)
    }
}

/// A value from a detection.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string, wildcards and escapes still in the author's notation.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
}

impl Value {
    /// The value as text, the way it is compared with strings (numbers in decimal).
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
        }
    }
}

/// Every value modifier of the Sigma v2.1 modifier appendix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Exists,
    Cased,
    Neq,
    Windash,
    Re,
    /// `re` sub-modifier `i` / `ignorecase`.
    ReIgnoreCase,
    /// `re` sub-modifier `m` / `multiline`.
    ReMultiLine,
    /// `re` sub-modifier `s` / `dotall`.
    ReDotAll,
    Base64,
    Base64Offset,
    Utf16le,
    Utf16be,
    Utf16,
    Lt,
    Lte,
    Gt,
    Gte,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Cidr,
    Expand,
    FieldRef,
}

impl Modifier {
    /// Parses a modifier name (`wide` is `utf16le`; the regex flags have long aliases).
    pub fn from_name(name: &str) -> Option<Modifier> {
        use Modifier::*;
        Some(match name {
            "contains" => Contains,
            "startswith" => StartsWith,
            "endswith" => EndsWith,
            "all" => All,
            "exists" => Exists,
            "cased" => Cased,
            "neq" => Neq,
            "windash" => Windash,
            "re" => Re,
            "i" | "ignorecase" => ReIgnoreCase,
            "m" | "multiline" => ReMultiLine,
            "s" | "dotall" => ReDotAll,
            "base64" => Base64,
            "base64offset" => Base64Offset,
            "utf16le" | "wide" => Utf16le,
            "utf16be" => Utf16be,
            "utf16" => Utf16,
            "lt" => Lt,
            "lte" => Lte,
            "gt" => Gt,
            "gte" => Gte,
            "minute" => Minute,
            "hour" => Hour,
            "day" => Day,
            "week" => Week,
            "month" => Month,
            "year" => Year,
            "cidr" => Cidr,
            "expand" => Expand,
            "fieldref" => FieldRef,
            _ => return None,
        })
    }

    /// True for the numeric comparison modifiers.
    pub fn is_compare(self) -> bool {
        matches!(
            self,
            Modifier::Lt | Modifier::Lte | Modifier::Gt | Modifier::Gte
        )
    }

    /// True for the time-part modifiers.
    pub fn is_time_part(self) -> bool {
        matches!(
            self,
            Modifier::Minute
                | Modifier::Hour
                | Modifier::Day
                | Modifier::Week
                | Modifier::Month
                | Modifier::Year
        )
    }

    /// True for the encoding modifiers that turn text into other bytes.
    pub fn is_encoding(self) -> bool {
        matches!(
            self,
            Modifier::Base64
                | Modifier::Base64Offset
                | Modifier::Utf16le
                | Modifier::Utf16be
                | Modifier::Utf16
        )
    }
}

/// The condition of a detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A search identifier by name.
    Id(String),
    /// Negation.
    Not(Box<Condition>),
    /// Conjunction.
    And(Vec<Condition>),
    /// Disjunction.
    Or(Vec<Condition>),
    /// `N of pattern` / `all of pattern`, resolved to the identifiers it names.
    Of {
        /// How many must hold.
        quantifier: Quantifier,
        /// The identifiers the pattern (or `them`) selected, in document order.
        ids: Vec<String>,
    },
}

/// The quantifier of an `of` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `N of` (`1 of` and `any of` are `AtLeast(1)`).
    AtLeast(u32),
    /// `all of`.
    All,
}
