//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test crate uses a subset of the helpers")]

use std::path::{Path, PathBuf};

/// A fixture directory under `tests/fixtures`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `cargo xtask` in-process; returns the exit code, stdout and stderr.
pub(crate) fn xtask(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = xtask::cli::run(&args, &mut out, &mut err);
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("output is UTF-8");
    (code, text(out), text(err))
}

/// Copies a fixture package (its `Cargo.toml` and `src/`) to a fresh
/// temporary directory, removed when dropped.
pub(crate) fn copy_fixture(name: &str, tag: &str) -> TempTree {
    let to = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    let to = TempTree(to);
    std::fs::create_dir_all(to.join("src")).expect("create temp dir");
    let from = fixture(name);
    std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml")).expect("copy manifest");
    for entry in std::fs::read_dir(from.join("src")).expect("read fixture") {
        let entry = entry.expect("fixture entry");
        std::fs::copy(entry.path(), to.join("src").join(entry.file_name())).expect("copy source");
    }
    to
}

/// A fresh temporary directory holding `files`, each a path below it and its
/// text; removed when dropped, so a test leaves nothing behind, failing or not.
pub(crate) fn temp_tree(tag: &str, files: &[(&str, &str)]) -> TempTree {
    let root = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let root = TempTree(root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create dir");
        std::fs::write(path, text).expect("write fixture file");
    }
    root
}

/// A temporary directory, removed with everything in it when dropped.
pub(crate) struct TempTree(PathBuf);

impl std::ops::Deref for TempTree {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempTree {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
