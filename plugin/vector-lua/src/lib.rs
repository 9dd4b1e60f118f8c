//! `require("sigmatag")`: a Lua 5.4 C module for Vector's stock `lua` transform (and any Lua
//! 5.4 host that loads C modules).
//!
//! ```lua
//! local sigma = require("sigmatag")
//! local m = sigma.new{ rules = "/etc/vector/sigma", mapping = "evtx", tag_field = "sigma" }
//! local matched, keep = m:tag(event.log)   -- adds event.log.sigma when a rule matches
//! ```
//!
//! - `new{...}` loads and compiles the rules once (per transform instance). Its fields are
//!   the shared [`sigmatag::TagConfig`]: `rules` (path or list of paths; none = the embedded
//!   default rule), `mapping`, `tag_field`, `drop_unmatched`, `placeholders`, `strict`. A bad
//!   option, an unreadable rule path or an unknown mapping is a Lua error saying which.
//! - `m:tag(t)` never raises and never changes anything but the tag field: it returns
//!   `matched, keep` (`keep` is false only for unmatched records under `drop_unmatched`). A
//!   value it cannot read (not a table, cycles or nesting deeper than [`MAX_DEPTH`]) is left
//!   alone and reported as `false, true`.
//! - `m:stats()` returns `{records, matched, unparsable, rules, rejected}`; `m:rejected()`
//!   the rejected rules, one message each.
//!
//! Tables are read the way Vector builds them from its events (vrl's `IntoLua`): strings,
//! integers, floats, booleans, sequences (a table with a positive length) and objects; a
//! table with `year`/`month`/`day`/`hour`/`min`/`sec` is a timestamp and reads as RFC 3339
//! text, as Vector's JSON encoder would write it. Functions, userdata and threads are
//! skipped.
#![deny(missing_docs)]

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use mlua::prelude::*;
use mlua::{Table, UserData, UserDataMethods, Value as LuaValue};
use sigmatag::{TagConfig, Tagger};
use sigmatag_matcher::{Record, RecordError, Scalar, Scratch, StackText, Text, Visitor};

/// Deepest table nesting read; deeper (or cyclic) tables are left unchanged.
pub const MAX_DEPTH: usize = 512;

/// A Lua table seen as a record.
pub struct LuaRecord<'a>(pub &'a Table);

impl Record for LuaRecord<'_> {
    fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError> {
        walk_table(self.0, visitor, 0).map_err(|_| RecordError {
            message: "table cannot be read (nesting, cycle or Lua error)",
            offset: 0,
        })
    }
}

/// Why a walk stopped; the caller only needs to know that it did.
struct WalkError;

impl From<LuaError> for WalkError {
    fn from(_: LuaError) -> Self {
        WalkError
    }
}

fn walkable(v: &LuaValue) -> bool {
    matches!(
        v,
        LuaValue::Boolean(_)
            | LuaValue::Integer(_)
            | LuaValue::Number(_)
            | LuaValue::String(_)
            | LuaValue::Table(_)
    ) || matches!(v, LuaValue::LightUserData(p) if p.0.is_null())
}

fn str_scalar(s: &mlua::String, vis: &mut dyn Visitor) {
    let bytes = s.as_bytes();
    match std::str::from_utf8(&bytes) {
        Ok(t) => vis.scalar(Scalar::Str(Text::Plain(t))),
        Err(_) => vis.scalar(Scalar::Str(Text::Plain(&String::from_utf8_lossy(&bytes)))),
    }
}

fn walk_value(v: &LuaValue, vis: &mut dyn Visitor, depth: usize) -> Result<(), WalkError> {
    match v {
        LuaValue::Boolean(b) => vis.scalar(Scalar::Bool(*b)),
        LuaValue::Integer(i) => {
            let mut t = StackText::new();
            let _ = write!(t, "{i}");
            vis.scalar(Scalar::Number(t.as_str()));
        }
        LuaValue::Number(f) => {
            let mut t = StackText::new();
            if f.is_finite() {
                let _ = write!(t, "{f:?}");
                vis.scalar(Scalar::Number(t.as_str()));
            } else {
                vis.scalar(Scalar::Null);
            }
        }
        LuaValue::String(s) => str_scalar(s, vis),
        LuaValue::Table(t) => {
            let mut ts = StackText::new();
            if timestamp_text(t, &mut ts)? {
                vis.scalar(Scalar::Str(Text::Plain(ts.as_str())));
            } else {
                walk_table(t, vis, depth + 1)?;
            }
        }
        // `walkable` let nothing else through but a NULL light userdata (a JSON null).
        _ => vis.scalar(Scalar::Null),
    }
    Ok(())
}

fn walk_table(t: &Table, vis: &mut dyn Visitor, depth: usize) -> Result<(), WalkError> {
    if depth > MAX_DEPTH {
        return Err(WalkError);
    }
    let n = t.raw_len();
    if n > 0 {
        vis.begin_array();
        for i in 1..=n {
            let v: LuaValue = t.raw_get(i)?;
            if walkable(&v) {
                walk_value(&v, vis, depth)?;
            }
        }
        vis.end_array();
        return Ok(());
    }
    vis.begin_object();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        if !walkable(&v) {
            continue;
        }
        let mut num = StackText::new();
        let wanted = match &k {
            LuaValue::String(s) => {
                let bytes = s.as_bytes();
                match std::str::from_utf8(&bytes) {
                    Ok(key) => vis.key(Text::Plain(key)),
                    Err(_) => vis.key(Text::Plain(&String::from_utf8_lossy(&bytes))),
                }
            }
            LuaValue::Integer(i) => {
                let _ = write!(num, "{i}");
                vis.key(Text::Plain(num.as_str()))
            }
            LuaValue::Number(f) => {
                let _ = write!(num, "{f:?}");
                vis.key(Text::Plain(num.as_str()))
            }
            _ => false,
        };
        if wanted {
            walk_value(&v, vis, depth)?;
            vis.end_value();
        }
    }
    vis.end_object();
    Ok(())
}

/// Writes a timestamp table (as Vector builds it) as RFC 3339 text with `Z`, seconds
/// fraction in 0, 3, 6 or 9 digits (chrono's `AutoSi`, what Vector's JSON encoder writes).
fn timestamp_text(t: &Table, out: &mut StackText) -> Result<bool, WalkError> {
    let year: LuaValue = t.raw_get("year")?;
    let LuaValue::Integer(year) = year else {
        return Ok(false);
    };
    let mut parts = [0i64; 5];
    for (slot, key) in parts.iter_mut().zip(["month", "day", "hour", "min", "sec"]) {
        match t.raw_get::<LuaValue>(key)? {
            LuaValue::Integer(v) => *slot = v,
            _ => return Ok(false),
        }
    }
    let nano = match t.raw_get::<LuaValue>("nanosec")? {
        LuaValue::Integer(v) => v,
        _ => 0,
    };
    let [month, day, hour, min, sec] = parts;
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}"
    );
    if nano != 0 {
        if nano % 1_000_000 == 0 {
            let _ = write!(out, ".{:03}", nano / 1_000_000);
        } else if nano % 1_000 == 0 {
            let _ = write!(out, ".{:06}", nano / 1_000);
        } else {
            let _ = write!(out, ".{nano:09}");
        }
    }
    let _ = out.write_str("Z");
    Ok(true)
}

/// One compiled rule set inside a Lua state (`sigma.new{...}`).
struct Matcher {
    tagger: Tagger,
    scratch: Scratch,
    records: u64,
    matched: u64,
    unparsable: u64,
}

fn make_entry(lua: &Lua, info: &sigmatag_matcher::RuleInfo) -> LuaResult<Table> {
    let e = lua.create_table_with_capacity(0, 4)?;
    e.raw_set("id", info.id.as_str())?;
    e.raw_set("title", info.title.as_str())?;
    if let Some(level) = &info.level {
        e.raw_set("level", level.as_str())?;
    }
    let tags = lua.create_table_with_capacity(info.tags.len(), 0)?;
    for (i, t) in info.tags.iter().enumerate() {
        tags.raw_set(i + 1, t.as_str())?;
    }
    e.raw_set("tags", tags)?;
    Ok(e)
}

impl Matcher {
    /// Matches and tags; any failure leaves the table as it was and reports no match.
    fn tag(&mut self, lua: &Lua, event: &LuaValue) -> (bool, bool) {
        self.records += 1;
        let LuaValue::Table(t) = event else {
            self.unparsable += 1;
            return (false, true);
        };
        let Matcher {
            tagger, scratch, ..
        } = self;
        let result = catch_unwind(AssertUnwindSafe(|| -> Result<bool, ()> {
            let hits = match tagger.set.match_record(&LuaRecord(t), scratch) {
                Ok(h) => h,
                Err(_) => return Err(()),
            };
            if hits.is_empty() {
                return Ok(false);
            }
            let build = || -> LuaResult<Table> {
                let arr = lua.create_table_with_capacity(hits.len(), 0)?;
                for (i, h) in hits.iter().enumerate() {
                    arr.raw_set(i + 1, make_entry(lua, tagger.set.info(*h as usize))?)?;
                }
                Ok(arr)
            };
            // Build the whole tag first, then insert: a failure cannot leave half a tag.
            let arr = build().map_err(|_| ())?;
            t.raw_set(tagger.tag_field(), arr).map_err(|_| ())?;
            Ok(true)
        }));
        match result {
            Ok(Ok(true)) => {
                self.matched += 1;
                (true, true)
            }
            Ok(Ok(false)) => (false, !self.tagger.drop_unmatched()),
            _ => {
                self.unparsable += 1;
                (false, true)
            }
        }
    }
}

impl UserData for Matcher {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut(
            "tag",
            |lua, this, event: LuaValue| Ok(this.tag(lua, &event)),
        );
        methods.add_method("stats", |lua, this, ()| {
            let s = lua.create_table()?;
            s.raw_set("records", this.records)?;
            s.raw_set("matched", this.matched)?;
            s.raw_set("unparsable", this.unparsable)?;
            s.raw_set("rules", this.tagger.set.len())?;
            s.raw_set("rejected", this.tagger.rejected.len())?;
            Ok(s)
        });
        methods.add_method("rejected", |lua, this, ()| {
            lua.create_sequence_from(this.tagger.rejected.iter().map(|e| e.to_string()))
        });
    }
}

const OPTIONS: &[&str] = &[
    "rules",
    "mapping",
    "tag_field",
    "drop_unmatched",
    "placeholders",
    "strict",
];

fn opt_string(opts: &Table, key: &str) -> Result<Option<String>, String> {
    match opts.raw_get::<LuaValue>(key) {
        Ok(LuaValue::Nil) => Ok(None),
        Ok(LuaValue::String(s)) => Ok(Some(s.to_string_lossy())),
        Ok(other) => Err(format!(
            "`{key}` must be a string, not {}",
            other.type_name()
        )),
        Err(e) => Err(format!("`{key}`: {e}")),
    }
}

fn opt_bool(opts: &Table, key: &str) -> Result<bool, String> {
    match opts.raw_get::<LuaValue>(key) {
        Ok(LuaValue::Nil) => Ok(false),
        Ok(LuaValue::Boolean(b)) => Ok(b),
        Ok(other) => Err(format!(
            "`{key}` must be a boolean, not {}",
            other.type_name()
        )),
        Err(e) => Err(format!("`{key}`: {e}")),
    }
}

/// Reads the option table into the shared config; unknown keys are errors (typos).
fn config_from(opts: &Table) -> Result<TagConfig, String> {
    for pair in opts.pairs::<LuaValue, LuaValue>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let name = match &k {
            LuaValue::String(s) => s.to_string_lossy(),
            other => {
                return Err(format!(
                    "option keys must be strings, not {}",
                    other.type_name()
                ))
            }
        };
        if !OPTIONS.contains(&name.as_str()) {
            return Err(format!(
                "unknown option `{name}` (known: {})",
                OPTIONS.join(", ")
            ));
        }
    }
    let mut cfg = TagConfig::default();
    match opts.raw_get::<LuaValue>("rules") {
        Ok(LuaValue::Nil) => {}
        Ok(LuaValue::String(s)) => cfg.rules.push(PathBuf::from(s.to_string_lossy())),
        Ok(LuaValue::Table(list)) => {
            for v in list.sequence_values::<LuaValue>() {
                match v {
                    Ok(LuaValue::String(s)) => cfg.rules.push(PathBuf::from(s.to_string_lossy())),
                    _ => return Err("`rules` must be a path or a list of paths".into()),
                }
            }
        }
        _ => return Err("`rules` must be a path or a list of paths".into()),
    }
    cfg.mapping = opt_string(opts, "mapping")?;
    if let Some(f) = opt_string(opts, "tag_field")? {
        cfg.tag_field = f;
    }
    cfg.placeholders = opt_string(opts, "placeholders")?.map(PathBuf::from);
    cfg.drop_unmatched = opt_bool(opts, "drop_unmatched")?;
    cfg.strict = opt_bool(opts, "strict")?;
    Ok(cfg)
}

fn new_matcher(_: &Lua, opts: Option<Table>) -> LuaResult<Matcher> {
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<Tagger, String> {
        let cfg = match &opts {
            Some(t) => config_from(t)?,
            None => TagConfig::default(),
        };
        cfg.build()
    }));
    let tagger = match built {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(LuaError::RuntimeError(format!("sigmatag.new: {e}"))),
        Err(_) => {
            return Err(LuaError::RuntimeError(
                "sigmatag.new: internal error while loading rules".into(),
            ))
        }
    };
    let scratch = tagger.scratch();
    Ok(Matcher {
        tagger,
        scratch,
        records: 0,
        matched: 0,
        unparsable: 0,
    })
}

/// The module table: `new`, `version`.
#[mlua::lua_module(name = "sigmatag")]
fn sigmatag_module(lua: &Lua) -> LuaResult<Table> {
    let exports = lua.create_table()?;
    exports.set("new", lua.create_function(new_matcher)?)?;
    exports.set("version", env!("CARGO_PKG_VERSION"))?;
    Ok(exports)
}
