//! Snapshots of the three output formats on the fixture crate. After a
//! deliberate change, rerun with `UPDATE_SNAPSHOTS=1` and review the diff.

mod support;

use serde_json::Value;
use std::path::Path;
use support::{fixture, temp_tree, xtask};

fn check(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("snapshot exists");
    assert!(
        expected == actual,
        "{name} differs from the snapshot:\n{actual}"
    );
}

fn run(format: &str) -> (u8, String, String) {
    let path = fixture("audit");
    xtask(&[
        "audit",
        "--path",
        path.to_str().unwrap(),
        "--format",
        format,
    ])
}

#[test]
fn text_is_rustc_style() {
    let (code, out, err) = run("text");
    assert_eq!(code, 1);
    assert_eq!(err, "");
    check("audit.txt", &out);
}

#[test]
fn json_is_one_object_per_finding() {
    let (code, out, err) = run("json");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "audit: 12 files, 76 untracked spawns, 24 other problems, 7 suppressed\n"
    );
    for line in out.lines() {
        let object: Value = serde_json::from_str(line).expect("each line is JSON");
        for key in ["rule", "severity", "file", "message"] {
            assert!(object[key].is_string(), "{key} in {line}");
        }
        for key in ["line", "column", "end_line", "end_column"] {
            assert!(
                object[key].as_u64().is_some_and(|n| n >= 1),
                "{key} in {line}"
            );
        }
        assert_eq!(
            object["api"].is_string(),
            object["rule"] == "untracked-spawn" || object["rule"] == "untracked-block-in-place"
        );
    }
    check("audit.json", &out);
}

#[test]
fn sarif_is_a_valid_2_1_0_log() {
    let (code, out, _) = run("sarif");
    assert_eq!(code, 1);
    let log: Value = serde_json::from_str(&out).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let region = &result["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
        assert!(region["startColumn"].as_u64().unwrap() >= 1);
        assert!(result["message"]["text"].is_string());
    }
    check("audit.sarif", &out);
}

/// A file that cannot be read (a dangling link) fails the audit with exit
/// code 2: JSON says so in an `io-error` line, SARIF in an unsuccessful
/// invocation with a notification, not only stderr.
#[cfg(unix)]
#[test]
fn io_errors_are_in_json_and_sarif() {
    let root = temp_tree("output-io", &[("src/lib.rs", "mod gone;\npub fn f() {}\n")]);
    std::os::unix::fs::symlink("nowhere.rs", root.join("src/gone.rs")).expect("create link");
    let path = root.to_str().unwrap();
    let (code, out, _) = xtask(&["audit", "--path", path, "--format", "json"]);
    assert_eq!(code, 2);
    let lines: Vec<Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["rule"], "io-error");
    assert_eq!(lines[0]["severity"], "error");
    assert_eq!(lines[0]["file"], "src/gone.rs");
    assert!(lines[0]["line"].is_null());
    let message = lines[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("cannot read src/gone.rs: link to nowhere.rs: "),
        "{message}"
    );

    let (code, out, _) = xtask(&["audit", "--path", path, "--format", "sarif"]);
    assert_eq!(code, 2);
    let log: Value = serde_json::from_str(&out).expect("SARIF is JSON");
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["level"], "error");
    assert_eq!(notes[0]["descriptor"]["id"], "io-error");
    assert_eq!(notes[0]["message"]["text"], lines[0]["message"]);
}
