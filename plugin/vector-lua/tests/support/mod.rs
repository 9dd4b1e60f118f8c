//! JSON -> Lua constructor text, as Vector's `lua` transform builds tables from events.
#![allow(dead_code)]

use std::fmt::Write as _;

use serde_json::Value;

fn lua_string(s: &str, out: &mut String) {
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

/// JSON -> Lua constructor, following vrl's `IntoLua` (what Vector's lua transform does).
pub fn lua_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("\"\""),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i == i64::MIN {
                    out.push_str("math.mininteger");
                } else {
                    let _ = write!(out, "{i}");
                }
            } else {
                // vrl keeps non-i64 numbers as floats.
                let _ = write!(out, "{:?}", n.as_f64().unwrap_or(0.0));
            }
        }
        Value::String(s) => lua_string(s, out),
        Value::Array(items) => {
            out.push('{');
            for it in items {
                lua_value(it, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (k, v) in map {
                out.push('[');
                lua_string(k, out);
                out.push_str("]=");
                lua_value(v, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}
