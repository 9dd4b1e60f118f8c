// ok: unwrap/expect in this file are in test or benchmark code, where a failure is the point.
//! filter_wasm host emulator tests: the built .wasm under wasmi + WASI, driven exactly as
//! Fluent Bit's filter_wasm drives it (see src/lib.rs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sigmatag_fluent_bit_tests::{artifact, compile, Outcome, WasmHost};
use wasmi::{Engine, Module};

fn module() -> Option<&'static (Engine, Module)> {
    static M: OnceLock<Option<(Engine, Module)>> = OnceLock::new();
    M.get_or_init(|| artifact("SIGMATAG_WASM").map(|p| compile(&p)))
        .as_ref()
}

/// A fresh directory under the temp dir with these files.
fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sigmatag-fb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for (f, text) in files {
        std::fs::write(d.join(f), text).unwrap();
    }
    d
}

fn host(dirs: &[&Path]) -> Option<WasmHost> {
    let (e, m) = module()?;
    Some(WasmHost::new(e, m, dirs, "sigmatag_filter"))
}

const SEED_ID: &str = "b2b048b0-7857-4380-b0fb-d3f0ab820b71";
const HIT: &str = r#"{"Image":"C:\\Windows\\System32\\iexpress.exe","CommandLine":"iexpress.exe /N /Q /M C:\\ProgramData\\x.sed"}"#;
const MISS: &str = r#"{"Image":"C:\\Windows\\System32\\iexpress.exe","CommandLine":"iexpress.exe /N /Q /M C:\\Users\\me\\Documents\\x.sed"}"#;

fn seed_dir(name: &str) -> PathBuf {
    dir(name, &[("seed.yml", sigmatag::DEFAULT_RULE)])
}

fn tagged(out: &Outcome, field: &str) -> Vec<String> {
    match out {
        Outcome::New(b) => {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            v[field]
                .as_array()
                .unwrap_or_else(|| panic!("no {field} array in {v}"))
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect()
        }
        other => panic!("expected a new body, got {other:?}"),
    }
}

#[test]
fn seed_rule_matching_and_not() {
    let d = seed_dir("seed");
    let Some(mut h) = host(&[&d]) else { return };
    let out = h.call("win.proc", HIT.as_bytes());
    assert_eq!(tagged(&out, "sigma"), vec![SEED_ID]);
    let Outcome::New(b) = &out else {
        unreachable!()
    };
    // Spliced, not re-serialised: the original bytes are a prefix.
    assert!(b.starts_with(&HIT.as_bytes()[..HIT.len() - 1]));
    assert_eq!(h.call("win.proc", MISS.as_bytes()), Outcome::Kept);
    // Case and windash variants match like the CLI.
    let v = HIT
        .replace("/N", "-n")
        .replace("iexpress.exe\",", "IEXPRESS.EXE\",");
    assert_eq!(tagged(&h.call("t", v.as_bytes()), "sigma"), vec![SEED_ID]);
    let err = h.stderr.text();
    assert!(
        err.contains("1 rules loaded from 1 files, 0 rejected"),
        "{err}"
    );
}

#[test]
fn config_file_sets_field_and_drop() {
    let d = dir(
        "config",
        &[
            ("seed.yml", sigmatag::DEFAULT_RULE),
            (
                "sigmatag.yml",
                "tag_field: detections\ndrop_unmatched: true\n",
            ),
        ],
    );
    let Some(mut h) = host(&[&d]) else { return };
    assert_eq!(
        tagged(&h.call("t", HIT.as_bytes()), "detections"),
        vec![SEED_ID]
    );
    assert_eq!(h.call("t", MISS.as_bytes()), Outcome::Dropped);
    // A record we cannot parse is never dropped.
    assert_eq!(h.call("t", b"{\"a\":"), Outcome::Kept);
    let err = h.stderr.text();
    assert!(
        err.contains("0 rejected"),
        "the config file is not read as a rule: {err}"
    );
}

#[test]
fn large_records() {
    let d = seed_dir("large");
    let Some(mut h) = host(&[&d]) else { return };
    for size in [1 << 10, 100 << 10, 1 << 20] {
        let pad = "x".repeat(size);
        let hit = format!("{},\"Pad\":\"{pad}\"}}", &HIT[..HIT.len() - 1]);
        let miss = format!("{{\"Pad\":\"{pad}\",{}", &MISS[1..]);
        let out = h.call("t", hit.as_bytes());
        assert_eq!(tagged(&out, "sigma"), vec![SEED_ID], "size {size}");
        let Outcome::New(b) = out else { unreachable!() };
        assert!(b.len() > hit.len() && b.starts_with(&hit.as_bytes()[..hit.len() - 1]));
        assert_eq!(h.call("t", miss.as_bytes()), Outcome::Kept, "size {size}");
    }
}

#[test]
fn non_ascii_arrives_escaped_and_matches_decoded() {
    let rule = "title: umlaut\nid: u-1\nlogsource: {product: windows}\ndetection:\n  sel:\n    CommandLine|contains: 'Jörg 😀'\n  condition: sel\n";
    let d = dir("utf", &[("u.yml", rule)]);
    let Some(mut h) = host(&[&d]) else { return };
    // As Fluent Bit renders it: every non-ASCII character escaped (a surrogate pair too).
    let rec = r#"{"CommandLine":"run J\u00f6rg \ud83d\ude00 now","User":"\u00c5sa"}"#;
    let out = h.call("t", rec.as_bytes());
    assert_eq!(tagged(&out, "sigma"), vec!["u-1"]);
    let Outcome::New(b) = out else { unreachable!() };
    assert!(
        b.starts_with(&rec.as_bytes()[..rec.len() - 1]),
        "escapes kept as they came"
    );
    // Case folding works on the decoded text.
    let rec = r#"{"CommandLine":"J\u00d6RG \ud83d\ude00"}"#;
    assert_eq!(tagged(&h.call("t", rec.as_bytes()), "sigma"), vec!["u-1"]);
    assert_eq!(h.call("t", br#"{"CommandLine":"Jorg"}"#), Outcome::Kept);
}

#[test]
fn invalid_input_passes_through_and_is_reported_once() {
    let d = seed_dir("invalid");
    let Some(mut h) = host(&[&d]) else { return };
    for bad in [
        &b"{\"a\":"[..],
        b"[1,2]",
        b"\"text\"",
        b"",
        b"{\"Image\":\"\xff\xfe\"}",
        b"{\"a\":1}}",
    ] {
        assert_eq!(
            h.call("t", bad),
            Outcome::Kept,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let err = h.stderr.text();
    assert_eq!(err.matches("not a JSON object").count(), 1, "{err}");
    // Still working afterwards.
    assert_eq!(tagged(&h.call("t", HIT.as_bytes()), "sigma"), vec![SEED_ID]);
    // record = 0 (the host's copy failed): no trap, and it is reported.
    let r = h.call_raw(0, 0, 0, 0);
    assert_eq!(h.read_cstr(r), b"");
    assert!(h.stderr.text().contains("passed no record"));
}

#[test]
fn broken_rule_file_is_reported_and_the_rest_load() {
    let d = dir(
        "broken",
        &[
            ("seed.yml", sigmatag::DEFAULT_RULE),
            ("broken.yml", "title: broken\nid: x\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|nosuchmodifier: a\n  condition: sel\n"),
            ("notyaml.yml", "title: [unclosed\n"),
        ],
    );
    let Some(mut h) = host(&[&d]) else { return };
    let err = h.stderr.text();
    assert!(
        err.contains("broken.yml") && err.contains("notyaml.yml"),
        "{err}"
    );
    assert!(
        err.contains("1 rules loaded from 3 files, 2 rejected"),
        "{err}"
    );
    assert_eq!(tagged(&h.call("t", HIT.as_bytes()), "sigma"), vec![SEED_ID]);
}

#[test]
fn bad_config_passes_everything_through() {
    let d = dir(
        "badconf",
        &[
            ("seed.yml", sigmatag::DEFAULT_RULE),
            ("sigmatag.yml", "mapping: nosuch\n"),
        ],
    );
    let Some(mut h) = host(&[&d]) else { return };
    assert_eq!(h.call("t", HIT.as_bytes()), Outcome::Kept);
    assert_eq!(h.call("t", HIT.as_bytes()), Outcome::Kept);
    let err = h.stderr.text();
    assert!(err.contains("unknown mapping 'nosuch'"), "{err}");
    assert_eq!(err.matches("rules are not loaded").count(), 1, "{err}");
}

#[test]
fn no_preopened_dir_uses_the_embedded_rule() {
    let Some(mut h) = host(&[]) else { return };
    assert_eq!(tagged(&h.call("t", HIT.as_bytes()), "sigma"), vec![SEED_ID]);
    assert!(h.stderr.text().contains("embedded default rule"));
}

#[test]
fn default_dot_dir_is_not_searched_without_a_config_file() {
    let Some((e, m)) = module() else { return };
    // Accessible_Paths unset: filter_wasm pre-opens "." (here holding a rule that would tag
    // every record). It must not be loaded: the embedded rule is used instead.
    let any = "title: any\nid: any-1\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|contains: 'e'\n  condition: sel\n";
    let d = dir("dot", &[("any.yml", any)]);
    let mut h = WasmHost::with_guest_paths(e, m, &[(&d, Path::new("."))], "sigmatag_filter");
    assert_eq!(tagged(&h.call("t", HIT.as_bytes()), "sigma"), vec![SEED_ID]);
    assert_eq!(h.call("t", MISS.as_bytes()), Outcome::Kept);
    // With a sigmatag.yml in it, "." is used.
    let d = dir(
        "dot2",
        &[("any.yml", any), ("sigmatag.yml", "tag_field: t\n")],
    );
    let mut h = WasmHost::with_guest_paths(e, m, &[(&d, Path::new("."))], "sigmatag_filter");
    assert_eq!(tagged(&h.call("t", MISS.as_bytes()), "t"), vec!["any-1"]);
}
