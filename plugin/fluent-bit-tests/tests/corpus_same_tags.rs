// ok: unwrap/expect in this file are in test or benchmark code, where a failure is the point.
//! 10,000 real EVTX records with every SigmaHQ process_creation rule under the evtx mapping:
//! the wasm module, the native shared object and the CLI path give identical tags.

use sigmatag_fluent_bit_tests::{
    artifact, compile, event_from_json, load_so, Outcome, SoHost, WasmHost,
};
use sigmatag_matcher::{JsonBytes, Pipeline};

const N: usize = 10_000;

#[test]
fn wasm_so_and_cli_agree_on_10000_records() {
    let Some(shared) = sigmatag_suite::shared_dir("corpus/events") else {
        return;
    };
    let Some(_) = sigmatag_suite::shared_dir("corpus/sigmahq") else {
        return;
    };
    let (Some(wasm), Some(so)) = (artifact("SIGMATAG_WASM"), artifact("SIGMATAG_FLB_SO")) else {
        return;
    };
    let rules = shared.join("corpus/sigmahq/rules/windows/process_creation");
    let text = std::fs::read_to_string(shared.join("corpus/events/windows-evtx.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().take(N).collect();
    assert_eq!(lines.len(), N);

    // CLI path.
    let loaded = sigmatag::load(
        std::slice::from_ref(&rules),
        Pipeline::preset("evtx").unwrap(),
        &Default::default(),
    )
    .unwrap();
    let mut scratch = loaded.set.scratch();
    let cli: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let hits = loaded
                .set
                .match_record(&JsonBytes(l.as_bytes()), &mut scratch)
                .unwrap();
            hits.iter()
                .map(|&i| loaded.set.info(i as usize).id.clone())
                .collect()
        })
        .collect();
    let matched = cli.iter().filter(|t| !t.is_empty()).count();
    assert!(
        matched >= 10,
        "the sample must exercise matches (got {matched})"
    );

    // wasm module: settings in a pre-opened dir, rules in a second pre-opened dir.
    let conf = std::env::temp_dir().join(format!("sigmatag-fb-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("sigmatag.yml"),
        format!("rules: [{}]\nmapping: evtx\n", rules.display()),
    )
    .unwrap();
    let (engine, module) = compile(&wasm);
    let mut h = WasmHost::new(&engine, &module, &[&conf, &rules], "sigmatag_filter");
    let err = h.stderr.text();
    assert!(
        err.contains(&format!("{} rules loaded", loaded.set.len())),
        "{err}"
    );
    for (i, l) in lines.iter().enumerate() {
        // Fluent Bit hands the module its own compact JSON rendering; the corpus lines are
        // compact JSON already.
        let got: Vec<String> = match h.call("win.evtx", l.as_bytes()) {
            Outcome::Kept => vec![],
            Outcome::New(b) => {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                v["sigma"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_string())
                    .collect()
            }
            Outcome::Dropped => panic!("record {i} dropped"),
        };
        assert_eq!(got, cli[i], "wasm vs CLI, record {i}");
    }

    // Shared object: the same records as msgpack events, in chunks of 100.
    std::env::set_var("SIGMATAG_FLB_VERSION", "5.1.1");
    let mut so = SoHost::init(
        load_so(&so),
        &[("Rules", rules.to_str().unwrap()), ("Mapping", "evtx")],
    )
    .expect("cb_init");
    for (c, chunk_lines) in lines.chunks(100).enumerate() {
        let mut chunk = Vec::new();
        for l in chunk_lines {
            event_from_json(&serde_json::from_str(l).unwrap(), &mut chunk);
        }
        let expect: Vec<&Vec<String>> = cli[c * 100..c * 100 + chunk_lines.len()].iter().collect();
        match so.filter(&chunk) {
            None => assert!(
                expect.iter().all(|t| t.is_empty()),
                "NOTOUCH but chunk {c} has matches"
            ),
            Some(out) => {
                let events = sigmatag_fluent_bit_tests::decode::events(&out);
                assert_eq!(events.len(), chunk_lines.len());
                for (k, body) in events.iter().enumerate() {
                    assert_eq!(
                        &body.sigma_ids(),
                        expect[k],
                        "so vs CLI, record {}",
                        c * 100 + k
                    );
                }
            }
        }
    }
}
