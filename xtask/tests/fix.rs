//! `--fix` rewrites direct spawns, leaves every other byte alone, is
//! idempotent, and lists what it could not fix.

mod support;

use support::{copy_fixture, fixture, xtask};

#[test]
fn rewrites_direct_spawns_only() {
    let dir = copy_fixture("fix", "fix");
    let (code, out, err) = xtask(&["audit", "--path", dir.to_str().unwrap(), "--fix"]);
    let fixed = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let expected = std::fs::read_to_string(fixture("fix/expected.rs")).unwrap();
    assert_eq!(fixed, expected);
    assert_eq!(code, 1, "method spawns remain");
    assert!(
        err.contains("rewrote 7 of 11 untracked spawns in 1 file(s)"),
        "{err}"
    );
    assert!(err.contains("could not fix 4 untracked spawn(s)"), "{err}");
    for left in [
        "src/lib.rs:32:9",
        "src/lib.rs:33:5",
        "src/lib.rs:34:54",
        "src/lib.rs:39:9",
    ] {
        assert!(
            out.contains(left),
            "{left} is listed as not fixed (positions after the fix):\n{out}"
        );
    }

    let (_, _, err) = xtask(&["audit", "--path", dir.to_str().unwrap(), "--fix"]);
    assert!(err.contains("rewrote 0 of 4"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
        expected,
        "idempotent"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn type_flag_overrides_the_configured_type() {
    let dir = copy_fixture("fix", "fix-type");
    xtask(&[
        "audit",
        "--path",
        dir.to_str().unwrap(),
        "--fix",
        "--type",
        "Network",
    ]);
    let fixed = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(fixed.contains(
        r#"tracked::spawn("fix_fixture::net::accept", tracked::TaskType::NETWORK, serve());"#
    ));
    assert!(!fixed.contains("Indexer"));
    let _ = std::fs::remove_dir_all(dir);
}
