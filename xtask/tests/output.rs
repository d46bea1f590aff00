//! Snapshots of the three output formats on the fixture crate. After a
//! deliberate change, rerun with `UPDATE_SNAPSHOTS=1` and review the diff.

mod support;

use serde_json::Value;
use std::path::Path;
use support::{fixture, xtask};

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
        "audit: 11 files, 75 untracked spawns, 14 other problems, 6 suppressed\n"
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
            object["rule"] == "untracked-spawn"
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
    assert_eq!(results.len(), 89);
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
