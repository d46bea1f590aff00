//! The audit never panics, whatever the input, and deep nesting does not
//! overflow the stack.

use proptest::prelude::*;
use xtask::{check_source, Rule};

const SOUP: &[&str] = &[
    "tokio",
    "spawn",
    "::",
    "task",
    "JoinSet",
    "Handle",
    "Runtime",
    "use",
    "as",
    "self",
    "super",
    "crate",
    "*",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    ",",
    ";",
    "=",
    "=>",
    ".",
    "!",
    "&",
    "|",
    "fn",
    "let",
    "mut",
    "impl",
    "struct",
    "mod",
    "macro_rules",
    "$",
    "$x",
    "#",
    "#[tracked(type = \"A\")]",
    "async",
    "move",
    "else",
    "if",
    "\"s\"",
    "'a",
    "r#\"raw\"#",
    "// tracked: allow(untracked-spawn)",
    " -- why",
    "\n",
    "/*",
    "*/",
    "///",
    "?",
    "x",
    "1",
    "extern crate",
    "tracked",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        check_source("fuzz.rs", &text);
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(SOUP), 0..200)) {
        check_source("soup.rs", &tokens.join(" "));
    }

    #[test]
    fn soup_inside_a_fn_never_panics(tokens in prop::collection::vec(prop::sample::select(SOUP), 0..200)) {
        let body = tokens.join(" ");
        check_source("soup.rs", &format!("use tokio::task::*;\nfn f() {{ {body} }}\nmacro_rules! m {{ () => {{ {body} }} }}"));
    }
}

fn deep(open: &str, middle: &str, close: &str, n: usize) -> String {
    format!(
        "fn f() {{ let _ = {}{middle}{}; }}",
        open.repeat(n),
        close.repeat(n)
    )
}

#[test]
fn deep_nesting_is_reported_not_overflowed() {
    let n = 100_000;
    let inputs = [
        deep("(", "tokio::spawn(x)", ")", n),
        deep("[", "x", "]", n),
        deep("{", "x", "}", n),
        deep("!", "x", "", n),
        deep("-", "x", "", n),
        deep("&", "x", "", n),
        deep("|x| ", "x", "", n),
        deep("async move ", "{}", "", n),
        deep("x = ", "x", "", n),
        deep("if x { 1 } else ", "{ 2 }", "", n),
        format!("type T = {}u8{};", "Vec<".repeat(n), ">".repeat(n)),
        format!("type T = {}u8;", "&'a ".repeat(n)),
        format!("fn f() {{ m!{}{}; }}", "(".repeat(n), ")".repeat(n)),
    ];
    for input in inputs {
        let diagnostics = check_source("deep.rs", &input);
        assert!(
            diagnostics.iter().any(|d| d.rule == Rule::ParseError),
            "{}",
            &input[..40]
        );
    }
}

#[test]
fn moderately_deep_code_still_parses() {
    let code = deep("(", "tokio::spawn(x)", ")", 200);
    let diagnostics = check_source("deep.rs", &code);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].rule, Rule::UntrackedSpawn);
}

#[test]
fn unparsable_files_are_reported_with_the_error() {
    let diagnostics = check_source("bad.rs", "fn f() { let = ; }\n");
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].rule, Rule::ParseError);
    assert_eq!((diagnostics[0].line, diagnostics[0].column), (1, 14));
}

/// rustc ignores a byte-order mark, and editors do not show it: columns on
/// the first line do not count it.
#[test]
fn a_byte_order_mark_is_not_a_column() {
    let code = "\u{feff}pub fn f() { tokio::spawn(async {}); }\n";
    let found: Vec<String> = check_source("bom.rs", code)
        .iter()
        .map(|d| d.location())
        .collect();
    assert_eq!(found, ["bom.rs:1:14"]);
}
