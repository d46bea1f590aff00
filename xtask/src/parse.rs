//! Parsing a source file without ever panicking or overflowing the stack.
//!
//! The text is lexed first (proc-macro2's lexer is iterative), the token tree
//! is measured for how deeply a recursive-descent parser would nest, and only
//! then handed to syn. Files nested deeper than [`NESTING_LIMIT`] are reported
//! instead of parsed. Parsing, scanning and dropping the syntax tree all run
//! on threads with [`STACK_SIZE`] bytes of stack, which covers that limit with
//! a wide margin even in debug builds.

use proc_macro2::{Delimiter, Group, LineColumn, Spacing, TokenStream, TokenTree};
use std::str::FromStr;

/// Stack size of the threads that parse and scan.
pub(crate) const STACK_SIZE: usize = 256 << 20;

/// The deepest estimated parser recursion the audit accepts.
pub(crate) const NESTING_LIMIT: usize = 2500;

/// Why a file could not be parsed.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Parses `src` as a Rust file. `candidates` are positions of comment-like
/// text (suppression markers); the returned vector tells for each whether it
/// lies inside a literal (a string, or a doc comment, which is lexed as one).
/// `measured` says [`parse_items`] already accepted this text's nesting.
pub(crate) fn parse_file(
    src: &str,
    candidates: &[LineColumn],
    measured: bool,
) -> Result<(syn::File, Vec<bool>), ParseError> {
    let tokens = lex(src)?;
    let in_literal = if measured && candidates.is_empty() {
        Vec::new()
    } else {
        measure(&tokens, candidates)?
    };
    let file = syn::parse2::<syn::File>(tokens).map_err(|err| error(&err))?;
    Ok((file, in_literal))
}

/// Parses only what the crate index needs: every fn body is emptied first,
/// which makes this parse a fraction of a full one. Checks nesting, so that a
/// later [`parse_file`] may skip it.
pub(crate) fn parse_items(src: &str) -> Result<syn::File, ParseError> {
    let tokens = lex(src)?;
    measure(&tokens, &[])?;
    syn::parse2::<syn::File>(strip_bodies(tokens)).map_err(|err| error(&err))
}

fn lex(src: &str) -> Result<TokenStream, ParseError> {
    let src = sanitize(src);
    TokenStream::from_str(&src).map_err(|err| ParseError {
        line: err.span().start().line,
        column: err.span().start().column + 1,
        message:
            "unbalanced delimiter, unterminated literal or comment, or a character that is not Rust"
                .to_owned(),
    })
}

/// Replaces the body of every fn with `{}`, keeping the bodies of modules,
/// impls and traits (whose fns are stripped in turn). An item is a container
/// when `mod`, `impl`, `trait`, `struct`, `enum` or `union` comes before any
/// `fn`; `fn f() -> impl Trait { .. }` is a fn.
fn strip_bodies(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let (mut is_fn, mut container) = (false, false);
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => {
                if ident == "fn" && !container {
                    is_fn = true;
                } else if !is_fn
                    && ["mod", "impl", "trait", "struct", "enum", "union"]
                        .iter()
                        .any(|k| ident == k)
                {
                    container = true;
                }
                out.push(TokenTree::Ident(ident));
            }
            TokenTree::Punct(punct) => {
                if punct.as_char() == ';' {
                    (is_fn, container) = (false, false);
                }
                out.push(TokenTree::Punct(punct));
            }
            TokenTree::Group(group)
                if group.delimiter() == Delimiter::Brace && (is_fn || container) =>
            {
                let inner = if is_fn {
                    TokenStream::new()
                } else {
                    strip_bodies(group.stream())
                };
                let mut stripped = Group::new(Delimiter::Brace, inner);
                stripped.set_span(group.span());
                out.push(TokenTree::Group(stripped));
                (is_fn, container) = (false, false);
            }
            TokenTree::Group(group) => {
                if group.delimiter() == Delimiter::Brace {
                    (is_fn, container) = (false, false);
                }
                out.push(TokenTree::Group(group));
            }
            literal @ TokenTree::Literal(_) => out.push(literal),
        }
    }
    out.into_iter().collect()
}

/// Converts a syn error to a [`ParseError`] at its first span.
pub(crate) fn error(err: &syn::Error) -> ParseError {
    let start = err.span().start();
    ParseError {
        line: start.line.max(1),
        column: start.column + 1,
        message: err.to_string(),
    }
}

/// Blanks a byte-order mark and a shebang line, as rustc ignores both, while
/// keeping every other character at its line and column.
fn sanitize(src: &str) -> std::borrow::Cow<'_, str> {
    let mut owned = None;
    let mut text = src;
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        owned = Some(format!(" {rest}"));
        text = owned.as_deref().unwrap_or(src);
    }
    if text.starts_with("#!") && !text[2..].trim_start().starts_with('[') {
        let end = text.find('\n').unwrap_or(text.len());
        let blanked = format!(
            "{}{}",
            " ".repeat(text[..end].chars().count()),
            &text[end..]
        );
        owned = Some(blanked);
    }
    match owned {
        Some(s) => std::borrow::Cow::Owned(s),
        None => std::borrow::Cow::Borrowed(src),
    }
}

/// Per-delimiter-level counters of the nesting estimate.
#[derive(Default, Clone, Copy)]
struct Level {
    base: usize,
    run: usize,
    angles: usize,
    chain: usize,
    after_quote: bool,
}

impl Level {
    fn cost(&self) -> usize {
        self.base + self.run + self.angles + self.chain
    }
}

const PREFIX_KEYWORDS: &[&str] = &[
    "async", "move", "return", "break", "yield", "mut", "const", "dyn", "impl", "box", "let",
    "ref", "unsafe", "static", "else", "if", "match", "while", "for", "loop", "in",
];

/// Walks the token tree iteratively, estimating how deeply syn would recurse
/// (delimiters, prefix operators and keywords, unclosed `<`, `else`/`=`/`|`
/// chains), and finds which candidate positions lie inside a literal.
fn measure(tokens: &TokenStream, candidates: &[LineColumn]) -> Result<Vec<bool>, ParseError> {
    let mut in_literal = vec![false; candidates.len()];
    let mut stack = vec![(tokens.clone().into_iter(), Level::default())];
    while let Some((iter, level)) = stack.last_mut() {
        let Some(token) = iter.next() else {
            stack.pop();
            continue;
        };
        let after_quote = std::mem::take(&mut level.after_quote);
        match &token {
            TokenTree::Group(group) => {
                level.run = 0;
                let base = level.cost() + 1;
                if base > NESTING_LIMIT {
                    return Err(too_deep(group.span().start()));
                }
                let inner = Level {
                    base,
                    ..Level::default()
                };
                stack.push((group.stream().into_iter(), inner));
                continue;
            }
            TokenTree::Punct(punct) => match punct.as_char() {
                ',' => level.run = 0,
                ';' => {
                    *level = Level {
                        base: level.base,
                        ..Level::default()
                    }
                }
                '<' => {
                    level.run += 1;
                    level.angles += 1;
                }
                '>' => {
                    level.run += 1;
                    level.angles = level.angles.saturating_sub(1);
                }
                '|' => {
                    level.run += 1;
                    level.chain += 1;
                }
                '=' if punct.spacing() == Spacing::Alone => {
                    level.run += 1;
                    level.chain += 1;
                }
                '\'' => {
                    level.run += 1;
                    level.after_quote = true;
                }
                _ => level.run += 1,
            },
            TokenTree::Ident(ident) => {
                // Compared in place: `to_string` would allocate per token.
                if PREFIX_KEYWORDS.iter().any(|k| ident == k) {
                    level.run += 1;
                    if ident == "else" || ident == "if" {
                        level.chain += 1;
                    }
                } else if !after_quote {
                    level.run = 0;
                }
            }
            TokenTree::Literal(literal) => {
                level.run = 0;
                if !candidates.is_empty() {
                    let span = literal.span();
                    let (start, end) = (span.start(), span.end());
                    for (pos, flag) in candidates.iter().zip(&mut in_literal) {
                        if (start.line, start.column) <= (pos.line, pos.column)
                            && (pos.line, pos.column) < (end.line, end.column)
                        {
                            *flag = true;
                        }
                    }
                }
            }
        }
        if level.cost() > NESTING_LIMIT {
            return Err(too_deep(token.span().start()));
        }
    }
    Ok(in_literal)
}

fn too_deep(at: LineColumn) -> ParseError {
    ParseError {
        line: at.line,
        column: at.column + 1,
        message: format!("code is nested too deeply to audit (limit {NESTING_LIMIT})"),
    }
}

/// Whether a token stream the audit rearranged itself (a `macro_rules!`
/// transcriber) is still shallow enough to hand to syn.
pub(crate) fn within_limit(tokens: &TokenStream) -> bool {
    measure(tokens, &[]).is_ok()
}
