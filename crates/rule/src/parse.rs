//! YAML tree -> [`Rule`], checking structure and modifier chains.

use std::collections::HashMap;

use crate::ast::*;
use crate::condition::parse_condition;
use crate::yaml::{parse_documents, Location, Node, NodeKind};
use crate::RuleError;

/// Largest rule file accepted, in bytes.
pub const MAX_RULE_BYTES: usize = 4 * 1024 * 1024;
/// Most values one field test may list.
pub const MAX_VALUES_PER_FIELD: usize = 100_000;

/// Values for `expand` placeholders: `%name%` -> the values it stands for (each in Sigma's
/// wildcard notation).
pub type Placeholders = HashMap<String, Vec<String>>;

/// How rules are loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Placeholder values for the `expand` modifier; a rule needing a missing one is rejected.
    pub placeholders: Placeholders,
}

struct Ctx<'a> {
    source: &'a str,
    rule_id: Option<String>,
    title: Option<String>,
}

impl Ctx<'_> {
    fn err(&self, loc: Location, path: impl Into<String>, reason: impl Into<String>) -> RuleError {
        RuleError {
            source: self.source.to_string(),
            rule_id: self.rule_id.clone(),
            title: self.title.clone(),
            loc,
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Parses a YAML text holding one or more rule documents. Each document yields a rule or
/// the reason it was rejected.
pub fn parse_rules(text: &str, source: &str, opts: &LoadOptions) -> Vec<Result<Rule, RuleError>> {
    let ctx = Ctx {
        source,
        rule_id: None,
        title: None,
    };
    if text.len() > MAX_RULE_BYTES {
        return vec![Err(ctx.err(
            Location { line: 1, col: 1 },
            "",
            format!("rule file larger than {MAX_RULE_BYTES} bytes"),
        ))];
    }
    let docs = match parse_documents(text) {
        Ok(d) => d,
        Err(e) => return vec![Err(ctx.err(e.loc, "", format!("YAML: {}", e.message)))],
    };
    if docs.is_empty() {
        return vec![Err(ctx.err(
            Location { line: 1, col: 1 },
            "",
            "file holds no YAML document",
        ))];
    }
    docs.iter()
        .map(|d| parse_rule_node(d, source, opts))
        .collect()
}

/// Parses one rule document.
pub fn parse_rule_node(doc: &Node, source: &str, opts: &LoadOptions) -> Result<Rule, RuleError> {
    let mut ctx = Ctx {
        source,
        rule_id: None,
        title: None,
    };
    if !matches!(doc.kind, NodeKind::Map(_)) {
        return Err(ctx.err(
            doc.loc,
            "",
            format!("a rule must be a map, found a {}", doc.shape()),
        ));
    }
    ctx.rule_id = doc.get("id").and_then(|n| n.as_str()).map(str::to_string);
    ctx.title = doc
        .get("title")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    if let Some(n) = doc.get("correlation") {
        return Err(ctx.err(
            n.loc,
            "correlation",
            "correlation rules are not supported yet",
        ));
    }
    if let Some(n) = doc.get("filter") {
        return Err(ctx.err(n.loc, "filter", "filter (meta) rules are not supported yet"));
    }
    if let Some(n) = doc.get("action") {
        return Err(ctx.err(
            n.loc,
            "action",
            "multi-document 'action' collections (Sigma v1) are not supported",
        ));
    }
    let title = match doc.get("title") {
        Some(n) => text_of(&ctx, n, "title")?,
        None => return Err(ctx.err(doc.loc, "title", "missing required attribute 'title'")),
    };
    let det = match doc.get("detection") {
        Some(n) => n,
        None => {
            return Err(ctx.err(
                doc.loc,
                "detection",
                "missing required attribute 'detection'",
            ))
        }
    };
    let detection = parse_detection(&ctx, det, opts)?;
    let mut logsource = LogSource {
        loc: key_loc(doc, "logsource").unwrap_or(Location { line: 1, col: 1 }),
        ..LogSource::default()
    };
    if let Some(ls) = doc.get("logsource") {
        if !matches!(ls.kind, NodeKind::Map(_)) {
            return Err(ctx.err(ls.loc, "logsource", "logsource must be a map"));
        }
        let get = |k: &str| -> Result<Option<String>, RuleError> {
            ls.get(k)
                .map(|n| text_of(&ctx, n, &format!("logsource.{k}")))
                .transpose()
        };
        logsource.category = get("category")?;
        logsource.product = get("product")?;
        logsource.service = get("service")?;
        logsource.definition = get("definition")?;
    }
    let opt_text = |k: &str| -> Result<Option<String>, RuleError> {
        doc.get(k)
            .filter(|n| !n.is_null())
            .map(|n| text_of(&ctx, n, k))
            .transpose()
    };
    let list = |k: &str| -> Result<Vec<String>, RuleError> {
        match doc.get(k) {
            None => Ok(Vec::new()),
            Some(n) if n.is_null() => Ok(Vec::new()),
            Some(n) => match &n.kind {
                NodeKind::Seq(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| text_of(&ctx, it, &format!("{k}[{i}]")))
                    .collect(),
                _ => Ok(vec![text_of(&ctx, n, k)?]),
            },
        }
    };
    let mut related = Vec::new();
    if let Some(NodeKind::Seq(items)) = doc.get("related").map(|n| &n.kind) {
        for (i, it) in items.iter().enumerate() {
            let id = it
                .get("id")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            let kind = it
                .get("type")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            if id.is_empty() {
                return Err(ctx.err(
                    it.loc,
                    format!("related[{i}]"),
                    "related entry without 'id'",
                ));
            }
            related.push(Related { id, kind });
        }
    }
    Ok(Rule {
        title,
        id: opt_text("id")?.unwrap_or_default(),
        name: opt_text("name")?,
        status: opt_text("status")?,
        description: opt_text("description")?,
        license: opt_text("license")?,
        author: opt_text("author")?,
        references: list("references")?,
        date: opt_text("date")?,
        modified: opt_text("modified")?,
        tags: list("tags")?,
        level: opt_text("level")?,
        falsepositives: list("falsepositives")?,
        fields: list("fields")?,
        scope: list("scope")?,
        related,
        logsource,
        detection,
        source: source.to_string(),
    })
}

/// Location of a mapping's key.
fn key_loc(map: &Node, key: &str) -> Option<Location> {
    match &map.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.loc),
        _ => None,
    }
}

fn text_of(ctx: &Ctx<'_>, n: &Node, path: &str) -> Result<String, RuleError> {
    n.as_str()
        .map(str::to_string)
        .ok_or_else(|| ctx.err(n.loc, path, format!("expected text, found a {}", n.shape())))
}

/// Resolves a scalar the way YAML 1.2's core schema does (quoted scalars stay strings).
pub fn scalar_value(n: &Node) -> Option<Value> {
    let NodeKind::Scalar { text, plain } = &n.kind else {
        return None;
    };
    if !plain {
        return Some(Value::Str(text.clone()));
    }
    let t = text.as_str();
    Some(match t {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | "+.inf" | ".Inf" | "+.Inf" | ".INF" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => {
            if let Some(v) = parse_int(t) {
                Value::Int(v)
            } else if is_float(t) {
                t.parse::<f64>()
                    .map(Value::Float)
                    .unwrap_or_else(|_| Value::Str(t.to_string()))
            } else {
                Value::Str(t.to_string())
            }
        }
    })
}

fn parse_int(t: &str) -> Option<i64> {
    if let Some(h) = t.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(o) = t.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok();
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

fn is_float(t: &str) -> bool {
    let s = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let mant_ok = {
        let mut parts = mant.splitn(2, '.');
        let a = parts.next().unwrap_or("");
        let b = parts.next();
        let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
        match b {
            Some(b) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
            None => !a.is_empty() && digits(a),
        }
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    };
    mant_ok && exp_ok && (mant.contains('.') || exp.is_some())
}

fn parse_detection(ctx: &Ctx<'_>, det: &Node, opts: &LoadOptions) -> Result<Detection, RuleError> {
    let NodeKind::Map(entries) = &det.kind else {
        return Err(ctx.err(det.loc, "detection", "detection must be a map"));
    };
    let mut search_ids = Vec::new();
    let mut condition_node = None;
    let mut timeframe = None;
    for (k, v) in entries {
        let Some(key) = k.as_str() else {
            return Err(ctx.err(k.loc, "detection", "search identifiers must be text"));
        };
        match key {
            "condition" => condition_node = Some(v),
            "timeframe" => timeframe = Some(text_of(ctx, v, "detection.timeframe")?),
            _ => {
                if search_ids.iter().any(|s: &SearchId| s.name == key) {
                    return Err(ctx.err(
                        k.loc,
                        format!("detection.{key}"),
                        "duplicate search identifier",
                    ));
                }
                search_ids.push(parse_search_id(ctx, key, k.loc, v, opts)?)
            }
        }
    }
    let Some(cnode) = condition_node else {
        return Err(ctx.err(det.loc, "detection.condition", "missing 'condition'"));
    };
    let names: Vec<String> = search_ids.iter().map(|s| s.name.clone()).collect();
    let texts: Vec<(&Node, String)> = match &cnode.kind {
        NodeKind::Seq(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, n)| text_of(ctx, n, &format!("detection.condition[{i}]")).map(|t| (n, t)))
            .collect::<Result<_, _>>()?,
        _ => vec![(cnode, text_of(ctx, cnode, "detection.condition")?)],
    };
    let mut conds = Vec::new();
    for (n, t) in texts {
        match parse_condition(&t, &names) {
            Ok(c) => conds.push(c),
            Err(e) => {
                return Err(ctx.err(
                    n.loc,
                    "detection.condition",
                    format!("condition '{t}' at offset {}: {}", e.offset, e.message),
                ))
            }
        }
    }
    let condition = if conds.len() == 1 {
        conds.pop().expect("one condition")
    } else {
        Condition::Or(conds)
    };
    Ok(Detection {
        search_ids,
        condition,
        timeframe,
    })
}

fn parse_search_id(
    ctx: &Ctx<'_>,
    name: &str,
    loc: Location,
    v: &Node,
    opts: &LoadOptions,
) -> Result<SearchId, RuleError> {
    let path = format!("detection.{name}");
    let mut alternatives = Vec::new();
    match &v.kind {
        NodeKind::Map(_) => alternatives.push(Alternative::AllOf(parse_map(ctx, &path, v, opts)?)),
        NodeKind::Seq(items) => {
            if items.is_empty() {
                return Err(ctx.err(v.loc, path, "empty list"));
            }
            if items.len() > MAX_VALUES_PER_FIELD {
                return Err(ctx.err(
                    v.loc,
                    path,
                    format!("more than {MAX_VALUES_PER_FIELD} values"),
                ));
            }
            for (i, it) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match &it.kind {
                    NodeKind::Map(_) => {
                        alternatives.push(Alternative::AllOf(parse_map(ctx, &p, it, opts)?))
                    }
                    NodeKind::Scalar { .. } => {
                        alternatives.push(Alternative::Keyword(keyword_value(ctx, &p, it)?))
                    }
                    NodeKind::Seq(_) => {
                        return Err(ctx.err(it.loc, p, "nested lists are not valid here"))
                    }
                }
            }
        }
        NodeKind::Scalar { .. } => {
            if v.is_null() {
                return Err(ctx.err(v.loc, path, "search identifier has no value"));
            }
            alternatives.push(Alternative::Keyword(keyword_value(ctx, &path, v)?))
        }
    }
    Ok(SearchId {
        name: name.to_string(),
        alternatives,
        loc,
    })
}

fn keyword_value(ctx: &Ctx<'_>, path: &str, n: &Node) -> Result<Value, RuleError> {
    match scalar_value(n) {
        Some(Value::Null) => Err(ctx.err(n.loc, path, "null is not a keyword")),
        Some(v) => Ok(v),
        None => Err(ctx.err(n.loc, path, "expected a scalar")),
    }
}

fn parse_map(
    ctx: &Ctx<'_>,
    path: &str,
    n: &Node,
    opts: &LoadOptions,
) -> Result<Vec<FieldTest>, RuleError> {
    let NodeKind::Map(entries) = &n.kind else {
        return Err(ctx.err(n.loc, path, "expected a map"));
    };
    if entries.is_empty() {
        return Err(ctx.err(n.loc, path, "empty map"));
    }
    entries
        .iter()
        .map(|(k, v)| {
            let key = k
                .as_str()
                .ok_or_else(|| ctx.err(k.loc, path, "field names must be text"))?;
            parse_field(ctx, &format!("{path}.{key}"), key, k.loc, v, opts)
        })
        .collect()
}

fn parse_field(
    ctx: &Ctx<'_>,
    path: &str,
    key: &str,
    loc: Location,
    v: &Node,
    opts: &LoadOptions,
) -> Result<FieldTest, RuleError> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("");
    let mut modifiers = Vec::new();
    for m in parts {
        match Modifier::from_name(m) {
            Some(m) => modifiers.push(m),
            None => return Err(ctx.err(loc, path, format!("unknown modifier '{m}'"))),
        }
    }
    let raw_values: Vec<&Node> = match &v.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        NodeKind::Scalar { .. } => vec![v],
        NodeKind::Map(_) => return Err(ctx.err(v.loc, path, "a field value cannot be a map")),
    };
    if raw_values.is_empty() {
        return Err(ctx.err(v.loc, path, "empty value list"));
    }
    if raw_values.len() > MAX_VALUES_PER_FIELD {
        return Err(ctx.err(
            v.loc,
            path,
            format!("more than {MAX_VALUES_PER_FIELD} values"),
        ));
    }
    let mut values = Vec::with_capacity(raw_values.len());
    for it in raw_values {
        match scalar_value(it) {
            Some(val) => values.push(val),
            None => return Err(ctx.err(it.loc, path, "nested lists or maps are not valid values")),
        }
    }
    let mut test = FieldTest {
        field: if field.is_empty() {
            None
        } else {
            Some(field.to_string())
        },
        modifiers,
        values,
        loc,
    };
    check_modifiers(&test).map_err(|r| ctx.err(loc, path, r))?;
    if test.has(Modifier::Expand) {
        test.values =
            expand(&test.values, &opts.placeholders).map_err(|r| ctx.err(loc, path, r))?;
        test.modifiers.retain(|m| *m != Modifier::Expand);
    }
    Ok(test)
}

/// Checks that a modifier chain is one the spec allows.
pub fn check_modifiers(t: &FieldTest) -> Result<(), String> {
    use Modifier::*;
    let m = &t.modifiers;
    let count = |x: Modifier| m.iter().filter(|y| **y == x).count();
    for x in m {
        if count(*x) > 1 {
            return Err(format!("modifier '{x:?}' appears twice"));
        }
    }
    let has = |x: Modifier| m.contains(&x);
    let position = |x: Modifier| m.iter().position(|y| *y == x);
    let string_like = [Contains, StartsWith, EndsWith];
    if string_like.iter().filter(|x| has(**x)).count() > 1 {
        return Err("contains, startswith and endswith exclude each other".into());
    }
    if has(Exists) {
        if m.len() != 1 {
            return Err("'exists' cannot be combined with other modifiers".into());
        }
        if t.values.len() != 1 || !matches!(t.values[0], Value::Bool(_)) {
            return Err("'exists' takes one boolean value (true or false)".into());
        }
        if t.field.is_none() {
            return Err("'exists' needs a field".into());
        }
        return Ok(());
    }
    if t.field.is_none() && t.values.iter().any(|v| matches!(v, Value::Null)) {
        return Err("null is not a keyword (a field-less key searches values)".into());
    }
    for v in &t.values {
        if matches!(v, Value::Null) && m.iter().any(|x| !matches!(x, All | Cased)) {
            return Err("null cannot be combined with modifiers".into());
        }
    }
    if (has(ReIgnoreCase) || has(ReMultiLine) || has(ReDotAll)) && !has(Re) {
        return Err("regex flags i, m, s need the 're' modifier".into());
    }
    if has(Re) {
        if let Some(bad) = m.iter().find(|x| {
            !matches!(
                x,
                Re | ReIgnoreCase | ReMultiLine | ReDotAll | All | Neq | Cased
            )
        }) {
            return Err(format!("'re' cannot be combined with '{bad:?}'"));
        }
        if t.values.iter().any(|v| !matches!(v, Value::Str(_))) {
            return Err("'re' values must be strings".into());
        }
    }
    let compares = m.iter().filter(|x| x.is_compare()).count();
    if compares > 1 {
        return Err("at most one of lt, lte, gt, gte".into());
    }
    let times = m.iter().filter(|x| x.is_time_part()).count();
    if times > 1 {
        return Err("at most one time-part modifier".into());
    }
    if compares == 1 || times == 1 {
        if let Some(bad) = m
            .iter()
            .find(|x| !(x.is_compare() || x.is_time_part() || matches!(x, All | Neq)))
        {
            return Err(format!(
                "numeric comparison cannot be combined with '{bad:?}'"
            ));
        }
        if t.values
            .iter()
            .any(|v| !matches!(v, Value::Int(_) | Value::Float(_)))
        {
            return Err("numeric and time-part modifiers need numeric values".into());
        }
        if compares == 1 && has(Neq) {
            return Err("'neq' cannot be combined with lt/lte/gt/gte".into());
        }
    }
    if has(Cidr) {
        if let Some(bad) = m.iter().find(|x| !matches!(x, Cidr | All | Neq)) {
            return Err(format!("'cidr' cannot be combined with '{bad:?}'"));
        }
        if t.values.iter().any(|v| !matches!(v, Value::Str(_))) {
            return Err("'cidr' values must be strings".into());
        }
    }
    if has(FieldRef) {
        if let Some(bad) = m.iter().find(|x| {
            !matches!(
                x,
                FieldRef | Contains | StartsWith | EndsWith | Cased | All | Neq
            )
        }) {
            return Err(format!("'fieldref' cannot be combined with '{bad:?}'"));
        }
        if t.field.is_none() {
            return Err("'fieldref' needs a field".into());
        }
        if t.values.iter().any(|v| !matches!(v, Value::Str(_))) {
            return Err("'fieldref' values must be field names".into());
        }
    }
    let encodings: Vec<usize> = m
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_encoding())
        .map(|(i, _)| i)
        .collect();
    let base64s = m
        .iter()
        .filter(|x| matches!(x, Base64 | Base64Offset))
        .count();
    if base64s > 1 {
        return Err("base64 and base64offset exclude each other".into());
    }
    let utf16s = m
        .iter()
        .filter(|x| matches!(x, Utf16 | Utf16le | Utf16be))
        .count();
    if utf16s > 1 {
        return Err("at most one of utf16, utf16le (wide), utf16be".into());
    }
    if !encodings.is_empty() {
        if let (Some(u), Some(b)) = (
            m.iter()
                .position(|x| matches!(x, Utf16 | Utf16le | Utf16be)),
            m.iter().position(|x| matches!(x, Base64 | Base64Offset)),
        ) {
            if u > b {
                return Err("utf16 encodings must come before base64 (encoding base64 text as utf16 is not meaningful)".into());
            }
        }
        if base64s == 0 {
            // utf16 alone yields bytes with NULs: still matchable against raw strings.
        }
        if let Some(w) = position(Windash) {
            if encodings.iter().any(|e| *e < w) {
                return Err("'windash' must come before encodings".into());
            }
        }
        if has(Base64Offset) && !has(Contains) {
            return Err(
                "'base64offset' needs 'contains' (the encoded value sits inside a longer string)"
                    .into(),
            );
        }
        if t.values
            .iter()
            .any(|v| !matches!(v, Value::Str(_) | Value::Int(_)))
        {
            return Err("encoding modifiers need string values".into());
        }
        if has(Base64Offset) && t.values.iter().any(|v| v.to_text().len() < 2) {
            // A one-byte value has an empty offset variant, which would match everything.
            return Err("'base64offset' needs values of at least 2 bytes".into());
        }
    }
    Ok(())
}

/// Replaces `%name%` placeholders (a `\%` stays a literal percent sign).
fn expand(values: &[Value], ph: &Placeholders) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for v in values {
        let Value::Str(s) = v else {
            out.push(v.clone());
            continue;
        };
        // Split into literal pieces and placeholder names.
        let mut variants: Vec<String> = vec![String::new()];
        let mut chars = s.chars().peekable();
        let mut lit = String::new();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek() == Some(&'%') {
                lit.push('%');
                chars.next();
            } else if c == '%' {
                let mut name = String::new();
                let mut closed = false;
                for c2 in chars.by_ref() {
                    if c2 == '%' {
                        closed = true;
                        break;
                    }
                    name.push(c2);
                }
                if !closed {
                    lit.push('%');
                    lit.push_str(&name);
                    continue;
                }
                let Some(repl) = ph.get(&name) else {
                    return Err(format!(
                        "placeholder '%{name}%' has no values configured (give a placeholder file)"
                    ));
                };
                if repl.is_empty() {
                    return Err(format!(
                        "placeholder '%{name}%' is configured with no values"
                    ));
                }
                let mut next = Vec::new();
                for base in &variants {
                    for r in repl {
                        next.push(format!("{base}{lit}{r}"));
                    }
                }
                if next.len() > MAX_VALUES_PER_FIELD {
                    return Err("placeholder expansion yields too many values".into());
                }
                variants = next;
                lit.clear();
            } else {
                lit.push(c);
            }
        }
        for mut var in variants {
            var.push_str(&lit);
            out.push(Value::Str(var));
        }
    }
    Ok(out)
}
