//! Looking inside macro invocations: whatever parses as Rust is scanned.
//!
//! An argument list is tried as comma-separated expressions, then as
//! statements; failing both, it is split at `,`, `;`, `=>` and `=` and each
//! piece is tried on its own (which covers `select!` branches), and pieces that
//! still do not parse are searched group by group. `macro_rules!`
//! transcribers are scanned with each `$var` read as an identifier and each
//! `$(...)*` repetition read once.

use crate::parse;
use crate::scan::Scanner;
use proc_macro2::{Group, Spacing, TokenStream, TokenTree};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::visit::Visit;

impl Scanner<'_> {
    /// Scans the tokens of a macro invocation.
    pub(crate) fn visit_tokens(&mut self, tokens: TokenStream) {
        if tokens.is_empty() {
            return;
        }
        let exprs = Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = exprs.parse2(tokens.clone()) {
            for expr in &exprs {
                self.visit_expr(expr);
            }
            return;
        }
        if let Ok(stmts) = syn::Block::parse_within.parse2(tokens.clone()) {
            self.visit_stmts(&stmts);
            return;
        }
        for piece in split(tokens) {
            self.visit_piece(piece);
        }
    }

    fn visit_piece(&mut self, piece: Vec<TokenTree>) {
        let stream: TokenStream = piece.iter().cloned().collect();
        if stream.is_empty() {
            return;
        }
        if let Ok(expr) = syn::parse2::<syn::Expr>(stream.clone()) {
            self.visit_expr(&expr);
        } else if let Ok(stmts) = syn::Block::parse_within.parse2(stream) {
            self.visit_stmts(&stmts);
        } else {
            for token in piece {
                if let TokenTree::Group(group) = token {
                    self.visit_tokens(group.stream());
                }
            }
        }
    }

    /// Scans the transcribers of a `macro_rules!` definition.
    pub(crate) fn visit_macro_rules(&mut self, tokens: TokenStream) {
        self.in_macro_rules += 1;
        let mut previous_arrow = false;
        let mut tokens = tokens.into_iter().peekable();
        while let Some(token) = tokens.next() {
            match &token {
                TokenTree::Punct(p) if p.as_char() == '=' && p.spacing() == Spacing::Joint => {
                    if let Some(TokenTree::Punct(next)) = tokens.peek() {
                        previous_arrow = next.as_char() == '>';
                    }
                    continue;
                }
                TokenTree::Punct(p) if p.as_char() == '>' && previous_arrow => continue,
                TokenTree::Group(group) if previous_arrow => {
                    let body = unmeta(group.stream());
                    if parse::within_limit(&body) {
                        self.visit_tokens(body);
                    }
                }
                _ => {}
            }
            previous_arrow = false;
        }
        self.in_macro_rules -= 1;
    }
}

/// Splits a token stream at top-level `,`, `;`, `=>` and lone `=`.
fn split(tokens: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut pieces = vec![Vec::new()];
    let mut tokens = tokens.into_iter().peekable();
    let mut joint_before = false;
    while let Some(token) = tokens.next() {
        let separator = match &token {
            TokenTree::Punct(p) => match p.as_char() {
                ',' | ';' => true,
                '=' if p.spacing() == Spacing::Joint => {
                    if matches!(tokens.peek(), Some(TokenTree::Punct(next)) if next.as_char() == '>')
                    {
                        tokens.next();
                        true
                    } else {
                        false
                    }
                }
                '=' => !joint_before,
                _ => false,
            },
            _ => false,
        };
        joint_before = matches!(&token, TokenTree::Punct(p) if p.spacing() == Spacing::Joint);
        if separator {
            pieces.push(Vec::new());
        } else if let Some(piece) = pieces.last_mut() {
            piece.push(token);
        }
    }
    pieces
}

/// Rewrites a transcriber so it can parse: `$name` becomes `name`, `$crate`
/// becomes `crate`, and `$( ... ) sep*` becomes its contents once.
fn unmeta(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Punct(p) if p.as_char() == '$' => match tokens.next() {
                Some(TokenTree::Ident(ident)) => out.push(TokenTree::Ident(ident)),
                Some(TokenTree::Group(group)) => {
                    out.extend(unmeta(group.stream()));
                    let kleene = |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if matches!(p.as_char(), '*' | '+' | '?'));
                    if kleene(tokens.peek()) {
                        tokens.next();
                    } else if matches!(tokens.peek(), Some(TokenTree::Punct(_))) {
                        let mut ahead = tokens.clone();
                        ahead.next();
                        if kleene(ahead.peek()) {
                            tokens.next();
                            tokens.next();
                        }
                    }
                }
                Some(other) => out.push(other),
                None => {}
            },
            TokenTree::Group(group) => {
                let mut rebuilt = Group::new(group.delimiter(), unmeta(group.stream()));
                rebuilt.set_span(group.span());
                out.push(TokenTree::Group(rebuilt));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}
