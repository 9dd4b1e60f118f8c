//! The command-line contract: one line out per line in, byte-identical when nothing matched,
//! unparsable lines passed through and counted, `check` exit codes and JSON output.

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sigmatag"))
}

fn run(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/events.jsonl"
    ))
    .unwrap()
}

#[test]
fn tag_example_events_with_default_rule() {
    let input = example();
    let (code, out, err) = run(&["tag", "--mapping", "evtx"], &input);
    assert_eq!(code, 0, "{err}");
    let in_lines: Vec<&[u8]> = input
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let out_lines: Vec<&[u8]> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(in_lines.len(), out_lines.len());
    let mut tagged = 0;
    for (i, o) in in_lines.iter().zip(&out_lines) {
        if i == o {
            continue;
        }
        tagged += 1;
        let mut orig: serde_json::Value = serde_json::from_slice(i).unwrap();
        let mut got: serde_json::Value = serde_json::from_slice(o).unwrap();
        let tag = got.as_object_mut().unwrap().remove("sigma").unwrap();
        assert_eq!(tag[0]["id"], "b2b048b0-7857-4380-b0fb-d3f0ab820b71");
        assert_eq!(tag[0]["level"], "high");
        assert_eq!(tag[0]["tags"][0], "attack.defense-evasion");
        orig.as_object_mut().unwrap().remove("sigma");
        assert_eq!(orig, got, "only the tag field may be added");
        // The original bytes are kept: the output starts with the input minus its last brace.
        assert!(o.starts_with(&i[..i.len() - 1]));
    }
    // /N, -n, en dash + upper case, and the Security 4688 record; not the Documents one.
    assert_eq!(tagged, 4);
    assert!(
        err.contains("7 records, 4 matched, 1 unparsable; 1 rules loaded, 0 rejected"),
        "{err}"
    );
}

#[test]
fn unparsable_lines_pass_through_unchanged() {
    let input: &[u8] = b"{\"a\":1}\nnot json\n\n{\"a\":\n[1,2]\n{\"x\":\"\xff\"}\n{\"CommandLine\":\"iexpress.exe /n C:\\\\ProgramData\\\\x\",\"Image\":\"C:\\\\iexpress.exe\"}\n";
    let (code, out, err) = run(&["tag", "--tag-field", "hits"], input);
    assert_eq!(code, 0);
    let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
    let ins: Vec<&[u8]> = input.split_inclusive(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), ins.len());
    for k in 0..6 {
        assert_eq!(lines[k], ins[k]);
    }
    assert!(String::from_utf8_lossy(lines[6]).contains("\"hits\":[{\"id\":\"b2b048b0"));
    assert!(err.contains("7 records, 1 matched, 5 unparsable"), "{err}");
}

#[test]
fn check_reports_rejections_with_location() {
    let dir = std::env::temp_dir().join(format!("sigmatag-cli-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("good.yml"), "title: good\nid: g\nlogsource: {product: x}\ndetection:\n  sel:\n    a: 1\n  condition: sel\n").unwrap();
    std::fs::write(
        dir.join("sub/bad.yaml"),
        "title: bad\nid: bad-1\nlogsource: {product: x}\ndetection:\n  sel:\n    a|nosuch: 1\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(dir.join("ignored.txt"), "not a rule").unwrap();
    let d = dir.to_str().unwrap();
    let (code, out, _) = run(&["check", d], b"");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("bad.yaml:6:5 [bad-1] detection.sel.a|nosuch: unknown modifier 'nosuch'"),
        "{text}"
    );
    assert!(
        text.contains("2 files, 1 rules loaded, 1 rejected"),
        "{text}"
    );
    let (code, out, _) = run(&["check", "--json", d], b"");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["loaded"], 1);
    assert_eq!(v["rejected"][0]["id"], "bad-1");
    assert_eq!(v["rejected"][0]["line"], 6);
    let (code, _, _) = run(&["check", dir.join("good.yml").to_str().unwrap()], b"");
    assert_eq!(code, 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(run(&["frobnicate"], b"").0, 2);
    assert_eq!(run(&["tag", "--mapping", "nope"], b"").0, 2);
    assert_eq!(run(&["check"], b"").0, 2);
}

#[test]
fn tag_passes_each_line_on_before_the_input_ends() {
    // A stream that pauses (`tail -f`, a shipper's exec output): each line must come out
    // while stdin is still open, not when an output buffer fills or the input ends.
    use std::io::BufRead;
    let mut child = bin()
        .arg("tag")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let example = example();
    let lines: Vec<&[u8]> = example.split_inclusive(|b| *b == b'\n').take(3).collect();
    for line in &lines {
        stdin.write_all(line).unwrap();
        stdin.flush().unwrap();
        // Generous: this is about the line coming out at all while stdin is open, not speed.
        let out = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a line out for the line in, with stdin still open");
        let line_in = std::str::from_utf8(line).unwrap().trim_end();
        assert!(
            out == line_in || out.contains("\"sigma\":["),
            "{out} for {line_in}"
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
