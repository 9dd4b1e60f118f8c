// ok: unwrap/expect in this file are in test or benchmark code, where a failure is the point.
//! Per-record cost of both Fluent Bit routes with every SigmaHQ
//! `rules/windows/process_creation` rule loaded (evtx mapping), on real EVTX records:
//! - the wasm module under the emulator (wasmi, an interpreter like WAMR's classic one),
//! - the native shared object's `cb_filter` (chunks of 256 events),
//! - and, for scale, the engine itself on the same JSON (the CLI path).
//!
//! Run: `bash .ci/fluent-bit.sh --bench` (builds everything first). Not a test.

use std::time::Instant;

use sigmatag_fluent_bit_tests::{compile, event_from_json, load_so, Outcome, SoHost, WasmHost};
use sigmatag_matcher::{JsonBytes, Pipeline};

fn main() {
    let shared = sigmatag_suite::shared_dir("corpus/sigmahq").expect("shared corpus");
    let wasm = std::env::var_os("SIGMATAG_WASM").expect("SIGMATAG_WASM");
    let so = std::env::var_os("SIGMATAG_FLB_SO").expect("SIGMATAG_FLB_SO");
    let rules = shared.join("corpus/sigmahq/rules/windows/process_creation");
    let text = std::fs::read_to_string(shared.join("corpus/events/windows-evtx.jsonl"))
        .expect("read windows-evtx.jsonl");
    // Records of about 1 KB (0.75-1.5 KB).
    let recs: Vec<&str> = text
        .lines()
        .filter(|l| (768..=1536).contains(&l.len()))
        .take(2000)
        .collect();
    let avg = recs.iter().map(|l| l.len()).sum::<usize>() as f64 / recs.len() as f64;
    println!(
        "records: {} of avg {:.0} bytes; rules: {}",
        recs.len(),
        avg,
        rules.display()
    );

    // Engine (CLI path).
    let t = Instant::now();
    let loaded = sigmatag::load(
        std::slice::from_ref(&rules),
        Pipeline::preset("evtx").expect("evtx preset"),
        &Default::default(),
    )
    .expect("load process_creation rules");
    println!(
        "native load+compile: {} rules in {:.2} s",
        loaded.set.len(),
        t.elapsed().as_secs_f64()
    );
    let mut scratch = loaded.set.scratch();
    let mut hits = 0;
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        for l in &recs {
            hits += loaded
                .set
                .match_record(&JsonBytes(l.as_bytes()), &mut scratch)
                .expect("corpus line is a JSON object")
                .len();
        }
    }
    let per = t.elapsed().as_secs_f64() / (rounds * recs.len()) as f64;
    println!(
        "engine (CLI path):         {:8.2} us/record ({hits} hits)",
        per * 1e6
    );

    // Native shared object.
    std::env::set_var("SIGMATAG_FLB_VERSION", "5.1.1");
    let mut h = SoHost::init(
        load_so(std::path::Path::new(&so)),
        &[
            ("rules", rules.to_str().expect("rules path is UTF-8")),
            ("mapping", "evtx"),
        ],
    )
    .expect("cb_init");
    let chunks: Vec<Vec<u8>> = recs
        .chunks(256)
        .map(|c| {
            let mut out = Vec::new();
            for l in c {
                event_from_json(
                    &serde_json::from_str(l).expect("corpus line is JSON"),
                    &mut out,
                );
            }
            out
        })
        .collect();
    let t = Instant::now();
    let mut modified = 0;
    for _ in 0..rounds {
        for c in &chunks {
            modified += usize::from(h.filter(c).is_some());
        }
    }
    let per = t.elapsed().as_secs_f64() / (rounds * recs.len()) as f64;
    println!(
        "shared object cb_filter:   {:8.2} us/record ({modified} chunks modified)",
        per * 1e6
    );

    // wasm module under the emulator.
    let conf = std::env::temp_dir().join(format!("sigmatag-fb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&conf).expect("create config dir");
    std::fs::write(
        conf.join("sigmatag.yml"),
        format!("rules: [{}]\nmapping: evtx\n", rules.display()),
    )
    .expect("write sigmatag.yml");
    let (engine, module) = compile(std::path::Path::new(&wasm));
    let t = Instant::now();
    let mut w = WasmHost::new(&engine, &module, &[&conf, &rules], "sigmatag_filter");
    println!(
        "wasm (wasmi) instantiate + _initialize: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let n = recs.len().min(1000);
    let t = Instant::now();
    let mut tagged = 0;
    for l in &recs[recs.len() - n..] {
        tagged += usize::from(matches!(w.call("win", l.as_bytes()), Outcome::New(_)));
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "wasm module (wasmi):       {:8.2} us/record ({tagged} tagged)",
        per * 1e6
    );
    println!(
        "wasm linear memory after the run: {:.1} MiB",
        w.memory_bytes() as f64 / (1 << 20) as f64
    );
}
