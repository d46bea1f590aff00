//! Code blocks in `///` doc comments, scanned when `audit-doctests` is on.

use crate::parse;
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use std::str::FromStr;
use syn::parse::Parser;
use syn::visit::Visit;

/// One fenced Rust code block of a doc comment.
pub(crate) struct DocBlock {
    code: String,
    /// For each line of `code`: its line in the file and the column offset.
    pub(crate) line_map: Vec<(usize, usize)>,
}

impl DocBlock {
    /// Parses the block as the statements of a body, as rustdoc wraps it.
    pub(crate) fn parse(&self) -> Result<Vec<syn::Stmt>, ()> {
        let tokens = TokenStream::from_str(&self.code).map_err(drop)?;
        if !parse::within_limit(&tokens) {
            return Err(());
        }
        syn::Block::parse_within.parse2(tokens).map_err(drop)
    }
}

/// A line of a `///` comment: file line, column of the `///`, text after it.
struct DocLine {
    line: usize,
    column: usize,
    text: String,
}

#[derive(Default)]
struct DocLines(Vec<DocLine>);

impl DocLines {
    fn add(&mut self, s: &syn::LitStr) {
        let text = s.value();
        if !text.contains('\n') {
            let start = s.span().start();
            self.0.push(DocLine {
                line: start.line,
                column: start.column,
                text,
            });
        }
    }

    /// The doc comments among a macro invocation's tokens: `#[doc = "…"]`
    /// (`#![doc = "…"]`), at any depth.
    fn add_tokens(&mut self, tokens: TokenStream) {
        let mut after_hash = false;
        for tree in tokens {
            match tree {
                TokenTree::Punct(p) if p.as_char() == '#' => after_hash = true,
                TokenTree::Punct(p) if p.as_char() == '!' && after_hash => {}
                TokenTree::Group(g) if after_hash && g.delimiter() == Delimiter::Bracket => {
                    after_hash = false;
                    match syn::parse2::<syn::MetaNameValue>(g.stream()) {
                        Ok(nv) if nv.path.is_ident("doc") => {
                            if let syn::Expr::Lit(syn::ExprLit {
                                lit: syn::Lit::Str(s),
                                ..
                            }) = &nv.value
                            {
                                self.add(s);
                            }
                        }
                        _ => self.add_tokens(g.stream()),
                    }
                }
                TokenTree::Group(g) => {
                    after_hash = false;
                    self.add_tokens(g.stream());
                }
                _ => after_hash = false,
            }
        }
    }
}

impl Visit<'_> for DocLines {
    fn visit_attribute(&mut self, attr: &syn::Attribute) {
        if !attr.path().is_ident("doc") {
            return;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                self.add(s);
            }
        }
    }

    fn visit_macro(&mut self, mac: &syn::Macro) {
        self.add_tokens(mac.tokens.clone());
    }
}

/// The Rust code blocks in the doc comments of `file`.
pub(crate) fn blocks(file: &syn::File) -> Vec<DocBlock> {
    let mut lines = DocLines::default();
    lines.visit_file(file);
    lines.0.sort_by_key(|l| (l.line, l.column));
    let mut out = Vec::new();
    let mut current: Option<DocBlock> = None;
    let mut previous_line = 0;
    for doc in lines.0 {
        let contiguous = doc.line == previous_line + 1;
        previous_line = doc.line;
        if !contiguous {
            current = None;
        }
        let trimmed = doc.text.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None if is_rust(lang) => {
                    current = Some(DocBlock {
                        code: String::new(),
                        line_map: Vec::new(),
                    })
                }
                None => {}
            }
            continue;
        }
        if let Some(block) = &mut current {
            let strip = doc.text.len() - doc.text.trim_start_matches(' ').len();
            let mut code = &doc.text[strip.min(1)..];
            let mut offset = 3 + strip.min(1);
            let body = code.trim_start();
            if body == "#" || body.starts_with("# ") {
                let skip = code.len() - body.len() + body.len().min(2);
                offset += code[..skip].chars().count();
                code = &code[skip..];
            }
            block.code.push_str(code);
            block.code.push('\n');
            block.line_map.push((doc.line, doc.column + offset));
        }
    }
    out
}

/// Whether a fence's info string marks Rust that rustdoc compiles.
fn is_rust(info: &str) -> bool {
    info.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .all(|t| {
            matches!(t, "rust" | "no_run" | "should_panic" | "test_harness")
                || t.starts_with("edition")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(source: &str) -> Vec<String> {
        let file = syn::parse_file(source).unwrap();
        blocks(&file).into_iter().map(|b| b.code).collect()
    }

    #[test]
    fn doc_comments_inside_macro_invocations_are_read() {
        let source = "\
/// ```
/// a();
/// ```
fn outer() {}
items! {
    /// ```
    /// b();
    /// ```
    fn inner() {}
    nested! { [
        /// ```
        /// c();
        /// ```
        struct S;
    ] }
}
macro_rules! m {
    () => {
        //! ```
        //! d();
        //! ```
    };
}
";
        assert_eq!(codes(source), ["a();\n", "b();\n", "c();\n", "d();\n"]);
    }
}
