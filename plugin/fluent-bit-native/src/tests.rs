// ok: unwrap/expect in this file are in test or benchmark code, where a failure is the point.
use super::*;
use sigmatag_adapter::Settings;

fn filter(drop: bool) -> ChunkFilter {
    let text = "title: t\nid: r1\nlevel: high\ntags: [a.b]\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n";
    let rules: Vec<_> = sigmatag_rule_parse(text);
    let (set, errs) =
        sigmatag_matcher::RuleSet::compile(&rules, sigmatag_matcher::Pipeline::flat());
    assert!(errs.is_empty());
    let mut s = Settings::with_rules(vec![]);
    s.drop_unmatched = drop;
    ChunkFilter::new(Engine::new(set, s)).expect("chunk filter from a compiled set")
}

fn sigmatag_rule_parse(text: &str) -> Vec<sigmatag_rule::Rule> {
    sigmatag_rule::parse_rules(text, "t", &Default::default())
        .into_iter()
        .map(|r| r.expect("fixture rule parses"))
        .collect()
}

/// `[[ext-time, {}], body]` with a body of (key, raw value bytes).
fn event(body: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut o = vec![0x92, 0x92];
    rmp::encode::write_ext_meta(&mut o, 8, 0).expect("write to Vec");
    o.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    o.push(0x80);
    rmp::encode::write_map_len(&mut o, body.len() as u32).expect("write to Vec");
    for (k, v) in body {
        rmp::encode::write_str(&mut o, k).expect("write to Vec");
        o.extend_from_slice(v);
    }
    o
}

fn s(v: &str) -> Vec<u8> {
    let mut o = Vec::new();
    rmp::encode::write_str(&mut o, v).expect("write to Vec");
    o
}

#[test]
fn untouched_modified_and_dropped() {
    let mut f = filter(false);
    let miss = event(&[("Image", s("C:\\x\\notepad.exe"))]);
    let hit = event(&[
        ("Image", s("C:\\x\\CMD.exe")),
        ("n", vec![0xcf, 255, 255, 255, 255, 255, 255, 255, 255]),
    ]);
    assert_eq!(f.filter(&miss), ChunkResult::Untouched);
    let chunk = [miss.clone(), hit.clone(), miss.clone()].concat();
    let ChunkResult::Modified(out) = f.filter(&chunk) else {
        panic!()
    };
    // The unmatched events are byte-identical, the matched one is the original + tag.
    assert!(out.starts_with(&miss) && out.ends_with(&miss));
    let mid = &out[miss.len()..out.len() - miss.len()];
    assert!(mid.len() > hit.len());
    let mut p = 0;
    let ev = parse_event(mid, &mut p)
        .expect("well-formed event")
        .expect("an event, not the end");
    assert_eq!(p, mid.len());
    assert_eq!(ev.pairs, 3);
    let mut f = filter(true);
    let ChunkResult::Modified(out) = f.filter(&chunk) else {
        panic!()
    };
    assert_eq!(f.counts, (3, 1, 2));
    assert!(!out.starts_with(&miss));
    assert_eq!(f.filter(&miss), ChunkResult::Modified(Vec::new()));
}

#[test]
fn group_markers_and_garbage() {
    let mut f = filter(false);
    // [[-1, {}], {}]: a group start marker stays as it is.
    let marker = vec![0x92, 0x92, 0xff, 0x80, 0x80];
    assert_eq!(f.filter(&marker), ChunkResult::Untouched);
    let hit = event(&[("Image", s("C:\\w\\cmd.exe"))]);
    let ChunkResult::Modified(out) = f.filter(&[marker.clone(), hit].concat()) else {
        panic!()
    };
    assert!(out.starts_with(&marker));
    // Truncated or invalid chunks: untouched.
    let hit = event(&[("Image", s("C:\\w\\cmd.exe"))]);
    assert_eq!(f.filter(&hit[..hit.len() - 1]), ChunkResult::Untouched);
    assert_eq!(f.filter(&[0xc1]), ChunkResult::Untouched);
    assert_eq!(
        f.filter(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
        ChunkResult::Untouched
    );
    // Deep nesting is an error, not a stack overflow.
    let mut deep = vec![0x92, 0x92, 0x01, 0x80, 0x81, 0xa1, b'a'];
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0x01);
    assert_eq!(f.filter(&deep), ChunkResult::Untouched);
}

#[test]
fn version_banner() {
    assert_eq!(
        ffi::parse_version_banner("Fluent Bit v5.1.1\nGit commit: x").as_deref(),
        Some("5.1.1")
    );
    assert_eq!(ffi::parse_version_banner("something else"), None);
}
