//! The user's own example, the seed rule, end to end through the library: loaded as the
//! embedded default rule, under the `evtx` mapping (Sysmon and Security 4688 shapes) and the
//! flat mapping.

use sigmatag::{load, DEFAULT_RULE};
use sigmatag_matcher::{JsonBytes, Pipeline};
use sigmatag_rule::LoadOptions;

fn sysmon(image: &str, cmd: &str) -> String {
    serde_json::json!({"Event": {
        "System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
                   "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}},
        "EventData": {"Image": image, "CommandLine": cmd, "OriginalFileName": "IEXPRESS.EXE"}}})
    .to_string()
}

fn security_4688(image: &str, cmd: &str) -> String {
    serde_json::json!({"Event": {
        "System": {"EventID": {"#attributes": {"Qualifiers": ""}, "#text": 4688}, "Channel": "Security"},
        "EventData": {"NewProcessName": image, "CommandLine": cmd}}})
    .to_string()
}

fn tags(mapping: &str, record: &str) -> usize {
    let loaded = load(
        &[],
        Pipeline::preset(mapping).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    assert_eq!(loaded.set.len(), 1);
    let mut scratch = loaded.set.scratch();
    loaded
        .set
        .match_record(&JsonBytes(record.as_bytes()), &mut scratch)
        .unwrap()
        .len()
}

const IMG: &str = r"C:\Windows\System32\iexpress.exe";

#[test]
fn embedded_default_is_the_seed_rule() {
    assert!(DEFAULT_RULE.contains("b2b048b0-7857-4380-b0fb-d3f0ab820b71"));
}

#[test]
fn seed_matches_suspicious_locations() {
    for cmd in [
        r"iexpress.exe /N /Q /M C:\ProgramData\x.sed",
        r"iexpress.exe -N /Q /M C:\ProgramData\x.sed",
        "iexpress.exe \u{2013}N /Q /M C:\\ProgramData\\x.sed",
        "iexpress.exe \u{2014}n /Q /M C:\\Windows\\Temp\\x.sed",
        "iexpress.exe \u{2015}n /Q /M D:\\Temp\\x.sed",
        r"IEXPRESS.EXE /n /q /m C:\Users\me\AppData\Local\Temp\x.sed",
    ] {
        assert_eq!(tags("evtx", &sysmon(IMG, cmd)), 1, "{cmd}");
        assert_eq!(
            tags("evtx", &sysmon(r"C:\WINDOWS\SYSTEM32\IEXPRESS.EXE", cmd)),
            1,
            "{cmd}"
        );
        assert_eq!(tags("evtx", &security_4688(IMG, cmd)), 1, "4688: {cmd}");
    }
}

#[test]
fn seed_ignores_documents_folder_and_other_flags() {
    let doc = r"iexpress.exe /N /Q /M C:\Users\me\Documents\x.sed";
    assert_eq!(tags("evtx", &sysmon(IMG, doc)), 0);
    assert_eq!(tags("evtx", &security_4688(IMG, doc)), 0);
    // No ' /n ' flag at all.
    assert_eq!(
        tags(
            "evtx",
            &sysmon(IMG, r"iexpress.exe /Q C:\ProgramData\x.sed")
        ),
        0
    );
    // 'x/n' is not a flag (windash replaces only dashes that start a word).
    assert_eq!(
        tags(
            "evtx",
            &sysmon(IMG, r"iexpress.exe x/n C:\ProgramData\x.sed")
        ),
        0
    );
    // Another image, not iexpress, no OriginalFileName.
    let other = serde_json::json!({"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
        "EventData": {"Image": r"C:\x\notiexpress.exe.bak", "CommandLine": r"a /n C:\ProgramData\x"}}});
    assert_eq!(tags("evtx", &other.to_string()), 0);
}

#[test]
fn seed_respects_logsource_under_evtx() {
    let cmd = r"iexpress.exe /N /Q /M C:\ProgramData\x.sed";
    // Same fields, but a Sysmon network event (EventID 3): not process_creation.
    let rec = sysmon(IMG, cmd).replace("\"EventID\":1", "\"EventID\":3");
    assert_eq!(tags("evtx", &rec), 0);
}

#[test]
fn seed_on_flat_records() {
    let rec = serde_json::json!({"Image": IMG, "CommandLine": r"iexpress.exe /N /Q /M C:\ProgramData\x.sed"});
    assert_eq!(tags("flat", &rec.to_string()), 1);
    let rec = serde_json::json!({"Image": IMG, "CommandLine": r"iexpress.exe /N /Q /M C:\Users\me\Documents\x.sed"});
    assert_eq!(tags("flat", &rec.to_string()), 0);
}
