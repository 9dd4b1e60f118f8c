// ok: unwrap/expect in this file are in test or benchmark code, where a failure is the point.
//! The native filter: `cb_filter` of the built flb-filter_sigmatag.so called with msgpack
//! chunks built by rmp, as Fluent Bit calls it. One test function, because the version
//! override is a process-wide environment variable.

use sigmatag_fluent_bit_tests::decode::{events, value, Mp};
use sigmatag_fluent_bit_tests::{artifact, load_so, SoHost};

const SEED_ID: &str = "b2b048b0-7857-4380-b0fb-d3f0ab820b71";

fn s(out: &mut Vec<u8>, v: &str) {
    rmp::encode::write_str(out, v).unwrap();
}

/// `[[EventTime, {"m": 1}], body]` with the body's pairs given as raw msgpack values.
fn event(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut o = vec![0x92, 0x92];
    rmp::encode::write_ext_meta(&mut o, 8, 0).unwrap();
    o.extend_from_slice(&[0x65, 0x53, 0xf1, 0, 0, 0, 0, 7]);
    o.push(0x81);
    s(&mut o, "m");
    o.push(1);
    rmp::encode::write_map_len(&mut o, pairs.len() as u32).unwrap();
    for (k, v) in pairs {
        s(&mut o, k);
        o.extend_from_slice(v);
    }
    o
}

fn str_(v: &str) -> Vec<u8> {
    let mut o = Vec::new();
    s(&mut o, v);
    o
}

/// Values whose exact types must survive: u64 max, i64 min, -0.0 (f64), 1.0 (f64),
/// 1.5 (f32), nested maps, arrays, bin, ext, nil, booleans, a non-string key.
fn typed_values() -> Vec<(&'static str, Vec<u8>)> {
    let mut nested = Vec::new();
    rmp::encode::write_map_len(&mut nested, 2).unwrap();
    s(&mut nested, "inner");
    rmp::encode::write_map_len(&mut nested, 1).unwrap();
    rmp::encode::write_uint(&mut nested, 7).unwrap(); // integer key
    rmp::encode::write_f64(&mut nested, 2.0).unwrap();
    s(&mut nested, "list");
    rmp::encode::write_array_len(&mut nested, 3).unwrap();
    rmp::encode::write_u8(&mut nested, 1).unwrap(); // 0xcc-encoded small int, kept as 0xcc
    rmp::encode::write_nil(&mut nested).unwrap();
    rmp::encode::write_bool(&mut nested, false).unwrap();
    let v = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut o = Vec::new();
        f(&mut o);
        o
    };
    vec![
        (
            "u64max",
            v(&|o| rmp::encode::write_u64(o, u64::MAX).unwrap()),
        ),
        (
            "i64min",
            v(&|o| rmp::encode::write_i64(o, i64::MIN).unwrap()),
        ),
        ("negzero", v(&|o| rmp::encode::write_f64(o, -0.0).unwrap())),
        ("one", v(&|o| rmp::encode::write_f64(o, 1.0).unwrap())),
        ("f32", v(&|o| rmp::encode::write_f32(o, 1.5).unwrap())),
        ("nested", nested),
        (
            "bin",
            v(&|o| rmp::encode::write_bin(o, &[0, 1, 2, 255]).unwrap()),
        ),
        (
            "ext",
            v(&|o| {
                rmp::encode::write_ext_meta(o, 3, 42).unwrap();
                o.extend_from_slice(&[9, 8, 7]);
            }),
        ),
        ("t", v(&|o| rmp::encode::write_bool(o, true).unwrap())),
    ]
}

fn seed_hit() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Image", str_("C:\\Windows\\System32\\iexpress.exe")),
        (
            "CommandLine",
            str_("iexpress.exe /N /Q /M C:\\ProgramData\\x.sed"),
        ),
    ]
}

fn seed_miss() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Image", str_("C:\\Windows\\System32\\iexpress.exe")),
        (
            "CommandLine",
            str_("iexpress.exe /N /Q /M C:\\Users\\me\\x.sed"),
        ),
    ]
}

#[test]
fn cb_filter_notouch_modified_and_type_fidelity() {
    let Some(so) = artifact("SIGMATAG_FLB_SO") else {
        return;
    };
    let rules = std::env::temp_dir().join(format!("sigmatag-so-{}", std::process::id()));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("seed.yml"), sigmatag::DEFAULT_RULE).unwrap();
    let rules_s = rules.to_str().unwrap();

    // Registration struct as Fluent Bit copies it.
    let p = load_so(&so);
    assert_eq!(p.event_type, 1, "FLB_FILTER_LOGS");
    // SAFETY: the plugin's static C string.
    assert_eq!(
        unsafe { std::ffi::CStr::from_ptr(p.name) }
            .to_str()
            .unwrap(),
        "sigmatag"
    );
    assert!(p.cb_init.is_some() && p.cb_filter.is_some() && p.cb_exit.is_some());
    assert!(p.config_map.is_null() && p.cb_notification.is_none());

    // Unknown versions are refused; so is a host that is not Fluent Bit (no override: the
    // plugin runs `/proc/self/exe --version`, here the test binary).
    std::env::set_var("SIGMATAG_FLB_VERSION", "3.2.10");
    assert_eq!(
        SoHost::init(load_so(&so), &[("rules", rules_s)]).err(),
        Some(-1)
    );
    std::env::remove_var("SIGMATAG_FLB_VERSION");
    assert_eq!(
        SoHost::init(load_so(&so), &[("rules", rules_s)]).err(),
        Some(-1)
    );
    std::env::set_var("SIGMATAG_FLB_VERSION", "5.1.1");
    // Missing rules, bad mapping: refused at init, not at the first record.
    assert_eq!(SoHost::init(load_so(&so), &[]).err(), Some(-1));
    assert_eq!(
        SoHost::init(load_so(&so), &[("rules", rules_s), ("mapping", "nosuch")]).err(),
        Some(-1)
    );

    let mut h = SoHost::init(load_so(&so), &[("Rules", rules_s)]).expect("cb_init");

    // Nothing matches: NOTOUCH.
    let mut typed_miss = seed_miss();
    typed_miss.extend(typed_values());
    let miss = event(&typed_miss);
    assert_eq!(h.filter(&[miss.clone(), miss.clone()].concat()), None);

    // A match among non-matches: a re-packed chunk.
    let mut typed_hit = seed_hit();
    typed_hit.extend(typed_values());
    let hit = event(&typed_hit);
    let chunk = [miss.clone(), hit.clone(), miss.clone()].concat();
    let out = h.filter(&chunk).expect("MODIFIED");
    assert!(
        out.starts_with(&miss) && out.ends_with(&miss),
        "unmatched events byte-identical"
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[1].sigma_ids(), vec![SEED_ID]);
    assert!(evs[0].sigma_ids().is_empty() && evs[2].sigma_ids().is_empty());
    // The header (time ext + metadata) and every original pair are exactly as they were.
    let orig = events(&hit);
    assert_eq!(evs[1].header, orig[0].header);
    assert_eq!(&evs[1].pairs()[..orig[0].pairs().len()], orig[0].pairs());
    assert_eq!(evs[1].pairs().len(), orig[0].pairs().len() + 1);
    assert_eq!(evs[1].get("u64max"), Some(&Mp::U(u64::MAX, 0xcf)));
    assert_eq!(evs[1].get("i64min"), Some(&Mp::I(i64::MIN, 0xd3)));
    assert_eq!(evs[1].get("negzero"), Some(&Mp::F64((-0.0f64).to_bits())));
    assert_eq!(evs[1].get("one"), Some(&Mp::F64(1.0f64.to_bits())));
    assert_eq!(evs[1].get("f32"), Some(&Mp::F32(1.5f32.to_bits())));
    assert_eq!(evs[1].get("bin"), Some(&Mp::Bin(vec![0, 1, 2, 255])));
    assert_eq!(evs[1].get("ext"), Some(&Mp::Ext(42, vec![9, 8, 7])));
    // The tag entry.
    let Some(Mp::Arr(tags)) = evs[1].get("sigma") else {
        panic!()
    };
    let Mp::Map(entry) = &tags[0] else { panic!() };
    let keys: Vec<_> = entry.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        ["id", "title", "level", "tags"]
            .map(|k| Mp::Str(k.into()))
            .to_vec()
    );
    assert_eq!(entry[2].1, Mp::Str("high".into()));

    // Legacy [time, body] events and group markers.
    let mut legacy = vec![0x92];
    rmp::encode::write_u32(&mut legacy, 1_700_000_000).unwrap();
    rmp::encode::write_map_len(&mut legacy, 2).unwrap();
    for (k, v) in seed_hit() {
        s(&mut legacy, k);
        legacy.extend_from_slice(&v);
    }
    let group_start = vec![0x92, 0x92, 0xff, 0x80, 0x80];
    let group_end = vec![0x92, 0x92, 0xfe, 0x80, 0x80];
    let out = h
        .filter(&[group_start.clone(), legacy.clone(), group_end.clone()].concat())
        .expect("MODIFIED");
    assert!(out.starts_with(&group_start) && out.ends_with(&group_end));
    let mut p = group_start.len();
    let Mp::Arr(ev) = value(&out, &mut p) else {
        panic!()
    };
    assert_eq!(ev[0], Mp::U(1_700_000_000, 0xce));

    // Broken chunks pass untouched (Fluent Bit keeps its data).
    assert_eq!(h.filter(&hit[..hit.len() - 3]), None);
    assert_eq!(h.filter(&[0xc1, 0xc1]), None);
    assert_eq!(h.filter(b""), None);
    drop(h);

    // drop_unmatched and a custom tag field.
    let mut h = SoHost::init(
        load_so(&so),
        &[
            ("rules", rules_s),
            ("tag_field", "detections"),
            ("drop_unmatched", "on"),
        ],
    )
    .expect("cb_init");
    let out = h
        .filter(&[miss.clone(), hit.clone()].concat())
        .expect("MODIFIED");
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].tag_ids("detections"), vec![SEED_ID]);
    assert_eq!(
        h.filter(&miss),
        Some(Vec::new()),
        "all dropped: empty MODIFIED chunk"
    );
}
