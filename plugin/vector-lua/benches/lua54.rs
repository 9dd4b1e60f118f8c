//! Records/s of the module inside a real `lua5.4`, with every SigmaHQ
//! `rules/windows/process_creation` rule loaded under the `evtx` mapping: the time of
//! `m:tag(t)` alone (building the tables, which Vector does anyway, is measured apart and
//! subtracted).
//!
//! `cargo build --release -p sigmatag-vector-lua && cargo bench -p sigmatag-vector-lua`

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;

const DRIVER: &str = r#"
local dir, rules, data = ...
package.cpath = dir .. "/?.so;" .. package.cpath
local t0 = os.clock()
local m = require("sigmatag").new{rules = rules, mapping = "evtx"}
print(string.format("%d rules loaded in %.2fs", m:stats().rules, os.clock() - t0))
local records = dofile(data)
local passes = 20
local t = os.clock()
for _ = 1, passes do for _, make in ipairs(records) do local r = make() end end
local build = os.clock() - t
t = os.clock()
local matched = 0
for _ = 1, passes do
  for _, make in ipairs(records) do if m:tag(make()) then matched = matched + 1 end end
end
local total = os.clock() - t
local n = passes * #records
print(string.format("%d records x %d: tag %.0f records/s (build+tag %.0f/s, build alone %.0f/s); %d matched per pass",
  #records, passes, n / (total - build), n / total, n / build, matched // passes))
"#;

fn main() {
    let shared = std::env::var_os("SIGMATAG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let rules = shared.join("corpus/sigmahq/rules/windows/process_creation");
    let Ok(text) = std::fs::read_to_string(shared.join("corpus/events/process_creation.jsonl"))
    else {
        eprintln!("SKIPPED: corpus not found");
        return;
    };
    let exe = std::env::current_exe().expect("bench exe");
    let profile = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let module = [
        profile.join("deps/libsigmatag_lua.so"),
        profile.join("libsigmatag_lua.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("build the module first: cargo build --release -p sigmatag-vector-lua");
    let dir = std::env::temp_dir().join(format!("sigmatag-lua-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(module, dir.join("sigmatag.so")).expect("copy module");
    let mut data = String::from("return {\n");
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        data.push_str("function() return ");
        support::lua_value(&v, &mut data);
        data.push_str(" end,\n");
    }
    data.push_str("}\n");
    std::fs::write(dir.join("records.lua"), data).expect("write data");
    std::fs::write(dir.join("bench.lua"), DRIVER).expect("write driver");
    let status = Command::new("lua5.4")
        .arg(dir.join("bench.lua"))
        .arg(&dir)
        .arg(&rules)
        .arg(dir.join("records.lua"))
        .status()
        .expect("run lua5.4");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success());
}
