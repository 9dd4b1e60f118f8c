//! The module loaded by a real Lua 5.4 interpreter (Debian's `lua5.4`) tags the corpus
//! records exactly as the CLI does.
//!
//! The records reach Lua as Vector's `lua` transform hands them over (vrl's `IntoLua`):
//! objects and arrays become tables, `null` becomes `""`, integers stay integers, floats
//! stay floats. The test writes them as Lua constructors, runs `lua5.4` on a driver script,
//! and compares what the script reports per record with the CLI's matches.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod support;
use sigmatag::TagConfig;
use sigmatag_matcher::JsonBytes;
use support::lua_value;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (or fails under CI=true) when something the test needs is missing.
fn require(what: &str, found: bool) -> bool {
    if !found {
        let msg = format!("{what} not found");
        if ci() {
            panic!("{msg}; CI=true: this is a failure");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}

fn shared(what: &str) -> PathBuf {
    std::env::var_os("SIGMATAG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join(what)
}

/// The cdylib cargo built for this test run: the lib target is also an rlib, so `cargo test`
/// compiles it (into `deps/`, next to this test binary) before running the test.
fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let deps = exe.parent().expect("deps dir");
    deps.join("libsigmatag_lua.so")
}

const DRIVER: &str = r##"
local dir, rules, data = ...
package.cpath = dir .. "/?.so;" .. package.cpath
local sigma = require("sigmatag")

-- Errors at `new` are Lua errors that say what is wrong.
local function fails(opts, needle)
  local ok, err = pcall(sigma.new, opts)
  assert(not ok, "new should have failed for " .. needle)
  assert(tostring(err):find(needle, 1, true), tostring(err))
end
fails({rules = "/nonexistent/sigma"}, "/nonexistent/sigma")
fails({mapping = "no-such-mapping"}, "no-such-mapping")
fails({rulez = "x"}, "unknown option `rulez`")
fails({tag_field = 3}, "`tag_field` must be a string")

local m = sigma.new{rules = rules, mapping = "evtx", tag_field = "sigma"}

-- `tag` never raises and never loses the event.
assert(select("#", m:tag(nil)) == 2)
local a, b = m:tag("not a table"); assert(a == false and b == true)
local cyc = {}; cyc[1] = cyc
local rec = {Event = {EventData = {Image = cyc}}}
a, b = m:tag(rec); assert(a == false and b == true and rec.sigma == nil)
a, b = m:tag({f = function() end, u = io.stdout}); assert(a == false and b == true)

local function equal(x, y)
  if type(x) ~= type(y) then return false end
  if type(x) ~= "table" then return x == y and math.type(x) == math.type(y) end
  for k, v in pairs(x) do if not equal(v, y[k]) then return false end end
  for k in pairs(y) do if x[k] == nil then return false end end
  return true
end

local function describe(tag)
  if tag == nil then return "-" end
  local parts = {}
  for i, e in ipairs(tag) do
    parts[i] = table.concat({e.id, e.title, e.level or "", table.concat(e.tags, ";")}, "|")
  end
  return table.concat(parts, "\30")
end

local records = dofile(data)
local out = {}
for i, make in ipairs(records) do
  local t = make()
  local matched, keep = m:tag(t)
  local tag = t.sigma
  t.sigma = nil
  out[#out + 1] = string.format("%d\t%d\t%d\t%d\t%s\n", i, matched and 1 or 0,
    keep and 1 or 0, equal(t, make()) and 1 or 0, describe(tag))
end
io.write(table.concat(out))
local s = m:stats()
io.write(string.format("stats\t%d\t%d\t%d\t%d\n", s.records, s.matched, s.unparsable, s.rules))
"##;

#[test]
fn lua54_tags_like_the_cli() {
    let lua = Command::new("lua5.4").arg("-v").output();
    if !require("lua5.4 interpreter (apt-get install lua5.4)", lua.is_ok()) {
        return;
    }
    let events = shared("corpus/events");
    let rules = shared("corpus/sigmahq/rules/windows");
    if !require(&events.display().to_string(), events.exists())
        || !require(&rules.display().to_string(), rules.exists())
    {
        return;
    }
    let module = module_path();
    assert!(
        module.exists(),
        "{} missing (the lib target should have been built by cargo test)",
        module.display()
    );

    let dir = std::env::temp_dir().join(format!("sigmatag-lua54-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(&module, dir.join("sigmatag.so")).expect("copy module");

    // The CLI's matches for every record, and the records as Lua constructors.
    let tagger = TagConfig {
        rules: vec![rules.clone()],
        mapping: Some("evtx".into()),
        ..TagConfig::default()
    }
    .build()
    .expect("rules load");
    let mut scratch = tagger.scratch();
    let mut expected = Vec::new();
    let mut data = String::from("return {\n");
    for file in ["process_creation.jsonl", "windows-evtx.jsonl"] {
        let text = std::fs::read_to_string(events.join(file)).expect("read corpus");
        for line in text.lines().filter(|l| !l.is_empty()) {
            let hits = tagger
                .set
                .match_record(&JsonBytes(line.as_bytes()), &mut scratch)
                .expect("corpus line parses");
            let desc: Vec<String> = hits
                .iter()
                .map(|h| {
                    let i = tagger.set.info(*h as usize);
                    format!(
                        "{}|{}|{}|{}",
                        i.id,
                        i.title,
                        i.level.as_deref().unwrap_or(""),
                        i.tags.join(";")
                    )
                })
                .collect();
            expected.push(if desc.is_empty() {
                "-".to_string()
            } else {
                desc.join("\u{1e}")
            });
            let v: Value = serde_json::from_str(line).expect("corpus line is JSON");
            data.push_str("function() return ");
            lua_value(&v, &mut data);
            data.push_str(" end,\n");
        }
    }
    data.push_str("}\n");
    let data_path = dir.join("records.lua");
    let driver_path = dir.join("driver.lua");
    std::fs::write(&data_path, data).expect("write data");
    std::fs::write(&driver_path, DRIVER).expect("write driver");

    let out = Command::new("lua5.4")
        .arg(&driver_path)
        .arg(&dir)
        .arg(&rules)
        .arg(&data_path)
        .output()
        .expect("run lua5.4");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lua5.4 failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let mut lines = stdout.lines();
    let mut matched = 0;
    for (i, want) in expected.iter().enumerate() {
        let line = lines.next().expect("one line per record");
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        assert_eq!(f.len(), 5, "{line}");
        assert_eq!(f[0], (i + 1).to_string());
        assert_eq!(f[4], want, "record {}: tag differs from the CLI's", i + 1);
        assert_eq!(
            f[1],
            if want == "-" { "0" } else { "1" },
            "record {}",
            i + 1
        );
        assert_eq!(f[2], "1", "record {}: keep", i + 1);
        assert_eq!(f[3], "1", "record {}: other fields changed", i + 1);
        matched += usize::from(want != "-");
    }
    let stats = lines.next().expect("stats line");
    // Four extra calls above: nil, a string and the cycle are unreadable; the table of a
    // function and a userdata reads as an empty record.
    let want = format!(
        "stats\t{}\t{}\t3\t{}",
        expected.len() + 4,
        matched,
        tagger.set.len()
    );
    assert_eq!(stats, want, "records, matched, unparsable, rules");
    assert!(matched > 100, "only {matched} matched");
    eprintln!(
        "{} records through lua5.4, {matched} matched",
        expected.len()
    );
}
