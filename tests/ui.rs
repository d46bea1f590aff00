//! Compile-time behaviour of `#[tracked]`: accepted shapes compile, and each
//! misuse fails with an error at the offending token (checked-in `.stderr`).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
