//! Looking inside macro invocations: whatever parses as Rust is scanned.
//!
//! `select!`'s branches and `matches!`'s arguments are parsed as such, each
//! pattern binding its names in its handler or guard only (a branch's
//! typed as what its future gives when awaited). Another argument
//! list (or one of those that does not parse) is tried as comma-separated
//! expressions, then as statements; failing both, it is split at `,`, `;`,
//! `=>` and `=` and each piece is tried on its own, and pieces that still do
//! not parse are searched group by group. `macro_rules!`
//! transcribers are scanned with each `$var` read as an identifier and each
//! `$(...)*` repetition read once.

use crate::parse;
use crate::scan::Scanner;
use proc_macro2::{Delimiter, Group, Spacing, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::Token;

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

    /// Scans `select!`'s branches, each pattern binding its names in its
    /// handler only, if the tokens parse as them.
    pub(crate) fn visit_select(&mut self, tokens: TokenStream) -> bool {
        let Ok(branches) = parse_select.parse2(tokens) else {
            return false;
        };
        for branch in &branches {
            if let Some((_, future)) = &branch.pattern {
                self.visit_expr(future);
            }
            if let Some(precondition) = &branch.precondition {
                self.visit_expr(precondition);
            }
            // The pattern matches what the future gives when awaited.
            let ty = branch
                .pattern
                .as_ref()
                .and_then(|(_, future)| self.awaited(self.infer(future)?));
            self.with_frame([], |this| {
                if let Some((pat, _)) = &branch.pattern {
                    this.bind(pat, ty);
                }
                this.visit_expr(&branch.handler);
            });
        }
        true
    }

    /// Scans `matches!(expr, pattern if guard)`, the pattern binding its
    /// names in the guard only, if the tokens parse as that.
    pub(crate) fn visit_matches(&mut self, tokens: TokenStream) -> bool {
        let Ok((expr, pat, guard)) = parse_matches.parse2(tokens) else {
            return false;
        };
        self.visit_expr(&expr);
        let ty = self.infer(&expr);
        self.with_frame([], |this| {
            this.bind(&pat, ty);
            if let Some(guard) = &guard {
                this.visit_expr(guard);
            }
        });
        true
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

/// The fns a `macro_rules!` definition's transcribers write out, at any
/// depth (in a `mod` beside the invocation's own tokens, as tokio's tests
/// define `fn rt()` for each runtime flavour), each parsed from its `fn`.
pub(crate) fn transcribed_fns(tokens: TokenStream) -> Vec<syn::Item> {
    fn search(tokens: TokenStream, out: &mut Vec<syn::Item>) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Ident(ident) if ident == "fn" => {
                    // Up to its body, the first `{ … }` after it.
                    let end = tokens[i..].iter().position(
                        |t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace),
                    );
                    let Some(end) = end else { continue };
                    let rest: TokenStream = tokens[i..=i + end].iter().cloned().collect();
                    if let Ok(f) = syn::parse2::<syn::ItemFn>(rest) {
                        out.push(syn::Item::Fn(f));
                    }
                }
                TokenTree::Group(group) => search(group.stream(), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let body = unmeta(tokens);
    if parse::within_limit(&body) {
        search(body, &mut out);
    }
    out
}

/// A `select!` branch: `pattern = future, if precondition => handler`, or
/// `else => handler` (no pattern).
struct Branch {
    pattern: Option<(syn::Pat, syn::Expr)>,
    precondition: Option<syn::Expr>,
    handler: syn::Expr,
}

/// `tokio::select!`'s arguments: `biased;` first, then branches separated
/// by commas (optional after a block handler).
fn parse_select(input: ParseStream<'_>) -> syn::Result<Vec<Branch>> {
    if input.peek(syn::Ident) && input.peek2(Token![;]) {
        let biased: syn::Ident = input.parse()?;
        if biased != "biased" {
            return Err(syn::Error::new(biased.span(), "expected `biased`"));
        }
        input.parse::<Token![;]>()?;
    }
    let mut branches = Vec::new();
    while !input.is_empty() {
        let mut branch = Branch {
            pattern: None,
            precondition: None,
            handler: syn::Expr::PLACEHOLDER,
        };
        // tokio's `else =>`, futures' `default =>` and `complete =>`: no
        // pattern, no future.
        let keyword = input.peek(syn::Ident) && input.peek2(Token![=>]) && {
            let fork = input.fork();
            let ident: syn::Ident = fork.parse()?;
            ident == "default" || ident == "complete"
        };
        if keyword {
            input.parse::<syn::Ident>()?;
        } else if input.parse::<Option<Token![else]>>()?.is_none() {
            let pat = syn::Pat::parse_multi_with_leading_vert(input)?;
            input.parse::<Token![=]>()?;
            branch.pattern = Some((pat, input.parse()?));
            if input.parse::<Option<Token![,]>>()?.is_some() {
                input.parse::<Token![if]>()?;
                branch.precondition = Some(input.parse()?);
            }
        }
        input.parse::<Token![=>]>()?;
        let block = input.peek(syn::token::Brace);
        branch.handler = if block {
            syn::Expr::Block(syn::ExprBlock {
                attrs: Vec::new(),
                label: None,
                block: input.parse()?,
            })
        } else {
            input.parse()?
        };
        branches.push(branch);
        if input.parse::<Option<Token![,]>>()?.is_none() && !block && !input.is_empty() {
            return Err(input.error("expected `,`"));
        }
    }
    Ok(branches)
}

/// `matches!(expr, pattern if guard)`, with an optional trailing comma.
fn parse_matches(input: ParseStream<'_>) -> syn::Result<(syn::Expr, syn::Pat, Option<syn::Expr>)> {
    let expr = input.parse()?;
    input.parse::<Token![,]>()?;
    let pat = syn::Pat::parse_multi_with_leading_vert(input)?;
    let guard = match input.parse::<Option<Token![if]>>()? {
        Some(_) => Some(input.parse()?),
        None => None,
    };
    input.parse::<Option<Token![,]>>()?;
    Ok((expr, pat, guard))
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
