//! Expands an annotated fn: validates its shape, rewrites the spawns in its
//! body, and wraps the body in `TrackedFn` with the fn's catalogue site.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Block, Expr, ReturnType, Signature, Stmt, Type, Visibility};

use crate::attr::Args;
use crate::path::{self, runtime};
use crate::spawn::{self, SpawnSite};

/// A fn whose body has not been parsed yet, so that a body that does not
/// parse can still be emitted unchanged for rustc to report.
struct MaybeItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: TokenStream,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig: Signature = input.parse()?;
        if input.peek(syn::Token![;]) {
            return Err(syn::Error::new(
                input.span(),
                "`#[tracked]` needs a fn body; put it on the fn in the `impl`, not on the trait's declaration",
            ));
        }
        let body: TokenTree = input.parse()?;
        Ok(MaybeItemFn {
            attrs,
            vis,
            sig,
            body: body.into_token_stream(),
        })
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse2::<Args>(args);
    let function = match syn::parse2::<MaybeItemFn>(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = not_a_fn(&item).unwrap_or(error);
            return with_errors(item, Some(error), args.err());
        }
    };
    let (args, args_error) = match args {
        Ok(mut args) => {
            let errors = args.errors.take();
            (Some(args), errors)
        }
        Err(error) => (None, Some(error)),
    };
    let _runtime = path::Scope::enter(args.as_ref().and_then(|args| args.krate.clone()));
    let mut errors = args_error;
    let mut add = |error: syn::Error| match &mut errors {
        Some(errors) => errors.combine(error),
        None => errors = Some(error),
    };
    if let Some(again) = function.attrs.iter().find(|attr| is_tracked(attr)) {
        add(syn::Error::new_spanned(
            again,
            "`#[tracked]` is applied twice to this fn, which would track each call as two \
             units; keep one",
        ));
    }
    if let Some(constness) = &function.sig.constness {
        add(syn::Error::new(
            constness.span,
            "`#[tracked]` cannot be applied to a `const fn`; it needs an `async fn`",
        ));
    }
    if let Some(abi) = &function.sig.abi {
        add(syn::Error::new_spanned(
            abi,
            "`#[tracked]` cannot be applied to an `extern` fn; it needs an `async fn`",
        ));
    }
    let (inner_attrs, mut block) = match parse_body(function.body.clone()) {
        Ok(body) => body,
        // rustc reports the body's own error on the unchanged fn.
        Err(_) => return with_errors(item, errors, None),
    };
    let shape = if function.sig.asyncness.is_some() {
        Some(if function.attrs.iter().all(is_inert) {
            Shape::AsyncFn
        } else {
            Shape::KeptAsync
        })
    } else {
        Shape::find(&block)
    };
    if let (Some(Shape::BoxPinned), Some(early)) = (shape, early_return(&block)) {
        add(syn::Error::new(
            early,
            "`#[tracked]` tracks a fn returning a boxed future through its final \
             `Box::pin(async move { … })`: this `return` would bypass it, and the call would go \
             unrecorded; return from inside that async block, or write the fn as an `async fn`",
        ));
    }
    if shape.is_none() && function.sig.constness.is_none() && function.sig.abi.is_none() {
        let message = if returns_future(&function.sig, &block) {
            "`#[tracked]` can only be applied to an `async fn`, or to a fn returning a future \
             whose body ends in `Box::pin(async move { … })` with no other `return` (as a trait's \
             `Service::call` can): write this fn in one of those forms"
        } else {
            "`#[tracked]` can only be applied to an `async fn`; for blocking work use `tracked::spawn_blocking`"
        };
        add(syn::Error::new(function.sig.fn_token.span, message));
    }
    if let (
        Some(Shape::AsyncFn),
        Some(Args {
            owner: Some(owner), ..
        }),
    ) = (shape, &args)
        && let Some(await_span) = first_await(owner)
    {
        add(syn::Error::new(
            await_span,
            "`owner` is evaluated when the fn is called, before its body runs, so it cannot \
             `.await`; await the value before the call and pass it as an argument",
        ));
    }
    let spawns = spawn::rewrite(&mut block);
    match (errors, shape, args) {
        (None, Some(shape), Some(args)) => {
            let body = Body { inner_attrs, block };
            let expanded = expand_fn(&function, &args, shape, body, &spawns.sites);
            // A bad spawn call was replaced by a diverging block, so its
            // error is the only one, and the rest of the fn still expands.
            with_errors(expanded, spawns.errors, None)
        }
        (errors, _, _) => with_errors(item, errors, None),
    }
}

/// Whether a fn that is not `async` returns a future all the same: a return
/// type naming `Future` (`impl Future<…>`, `Pin<Box<dyn Future<…>>>`, by
/// any path), or a body ending in an async block.
fn returns_future(sig: &Signature, block: &Block) -> bool {
    fn names_future(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => ident == "Future",
            TokenTree::Group(group) => names_future(group.stream()),
            _ => false,
        })
    }
    let declared = match &sig.output {
        ReturnType::Type(_, ty) => names_future(ty.to_token_stream()),
        ReturnType::Default => false,
    };
    declared || matches!(block.stmts.last(), Some(Stmt::Expr(Expr::Async(_), None)))
}

/// The first `return` in a body before its final expression, outside the
/// closures, async blocks and items in it: in a [`Shape::BoxPinned`] fn, a
/// way out that skips the tracked `Box::pin`.
fn early_return(block: &Block) -> Option<Span> {
    struct ReturnFinder(Option<Span>);
    impl syn::visit::Visit<'_> for ReturnFinder {
        fn visit_expr_return(&mut self, expr: &syn::ExprReturn) {
            self.0.get_or_insert(expr.return_token.span);
        }
        fn visit_expr_async(&mut self, _: &syn::ExprAsync) {}
        fn visit_expr_closure(&mut self, _: &syn::ExprClosure) {}
        fn visit_item(&mut self, _: &syn::Item) {}
    }
    let mut finder = ReturnFinder(None);
    let before_tail = &block.stmts[..block.stmts.len().saturating_sub(1)];
    for stmt in before_tail {
        syn::visit::Visit::visit_stmt(&mut finder, stmt);
    }
    finder.0
}

/// An annotated fn's body: its inner attributes and its statements.
struct Body {
    /// `#![allow(…)]` and the like, written first in the body: kept first
    /// in the expanded fn's body, where they apply to the whole fn as
    /// they did.
    inner_attrs: Vec<Attribute>,
    block: Block,
}

/// Parses a fn body, inner attributes included: `Block`'s parser takes
/// none, and a body with one must still be tracked.
fn parse_body(tokens: TokenStream) -> syn::Result<(Vec<Attribute>, Block)> {
    let parser = |input: ParseStream<'_>| {
        let content;
        let brace_token = syn::braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let stmts = content.call(Block::parse_within)?;
        Ok((inner_attrs, Block { brace_token, stmts }))
    };
    syn::parse::Parser::parse2(parser, tokens)
}

/// The span of the first `.await` in `expr` that is not inside an async
/// block or closure of its own (where it would be that block's); in a
/// macro's arguments (`format!("{}", who().await)`), the first `. await`
/// among its tokens outside an `async` block.
fn first_await(expr: &Expr) -> Option<Span> {
    let mut finder = AwaitFinder(None);
    syn::visit::Visit::visit_expr(&mut finder, expr);
    finder.0
}

/// Whether a fn body awaits, as [`first_await`] finds awaits.
fn awaits(body: &Block) -> bool {
    let mut finder = AwaitFinder(None);
    syn::visit::Visit::visit_block(&mut finder, body);
    finder.0.is_some()
}

/// The first await's span, for [`first_await`] and [`awaits`].
struct AwaitFinder(Option<Span>);

impl syn::visit::Visit<'_> for AwaitFinder {
    fn visit_expr_await(&mut self, expr: &syn::ExprAwait) {
        if self.0.is_none() {
            self.0 = Some(expr.await_token.span);
        }
    }
    fn visit_expr_async(&mut self, _: &syn::ExprAsync) {}
    fn visit_expr_closure(&mut self, _: &syn::ExprClosure) {}
    fn visit_item(&mut self, _: &syn::Item) {}
    fn visit_macro(&mut self, mac: &syn::Macro) {
        if self.0.is_none() {
            self.0 = await_token(mac.tokens.clone());
        }
    }
}

/// The first `await` after a `.` in `tokens`, skipping `async` blocks.
fn await_token(tokens: TokenStream) -> Option<Span> {
    let mut previous: Option<TokenTree> = None;
    for token in tokens {
        match &token {
            TokenTree::Ident(ident)
                if ident == "await"
                    && matches!(&previous, Some(TokenTree::Punct(p)) if p.as_char() == '.') =>
            {
                return Some(ident.span());
            }
            TokenTree::Group(group) if !matches!(&previous, Some(TokenTree::Ident(i)) if i == "async" || i == "move") => {
                if let Some(span) = await_token(group.stream()) {
                    return Some(span);
                }
            }
            _ => {}
        }
        previous = Some(token);
    }
    None
}

/// The original item followed by the errors: one error, no cascade, and the
/// IDE keeps seeing the fn.
fn with_errors(item: TokenStream, a: Option<syn::Error>, b: Option<syn::Error>) -> TokenStream {
    let mut out = item;
    for error in [a, b].into_iter().flatten() {
        out.extend(error.into_compile_error());
    }
    out
}

/// The error for an item that is not a fn at all, at its keyword.
fn not_a_fn(item: &TokenStream) -> Option<syn::Error> {
    let item: syn::Item = syn::parse2(item.clone()).ok()?;
    let (what, span) = match &item {
        syn::Item::Struct(s) => ("a struct", s.struct_token.span),
        syn::Item::Enum(e) => ("an enum", e.enum_token.span),
        syn::Item::Union(u) => ("a union", u.union_token.span),
        syn::Item::Impl(i) => (
            "an `impl` block; put it on the async fns inside",
            i.impl_token.span,
        ),
        syn::Item::Trait(t) => (
            "a trait; put it on the async fns of its impls",
            t.trait_token.span,
        ),
        syn::Item::Const(c) => ("a const", c.const_token.span),
        syn::Item::Static(s) => ("a static", s.static_token.span),
        syn::Item::Mod(m) => ("a module", m.mod_token.span),
        syn::Item::Type(t) => ("a type alias", t.type_token.span),
        syn::Item::Use(u) => ("a `use` item", u.use_token.span),
        syn::Item::ForeignMod(f) => ("an `extern` block", f.abi.extern_token.span),
        // A fn without a body, or something syn keeps verbatim: the
        // parse error says more.
        _ => return None,
    };
    Some(syn::Error::new(
        span,
        format!("`#[tracked]` can only be applied to an `async fn`, not to {what}"),
    ))
}

/// Where the fn's async body is.
#[derive(Clone, Copy)]
enum Shape {
    /// An `async fn` with no other attribute that needs it to stay one:
    /// the whole body. It becomes a plain fn returning the `TrackedFn`.
    AsyncFn,
    /// An `async fn` that another attribute macro still has to read as one
    /// (`#[tokio::main]`, `#[tokio::test]`, `#[tracing::instrument]`
    /// written after `#[tracked]`): it stays an `async fn` and awaits the
    /// `TrackedFn`, at the cost of a second state machine around the body.
    KeptAsync,
    /// `async-trait`'s form: a fn returning `Box::pin(async move { … })`,
    /// the final expression of the body.
    BoxPinned,
    /// `#[tokio::main]`/`#[tokio::test]` applied first: statement `index`
    /// is `let body = async { … };`.
    LetBody(usize),
}

impl Shape {
    fn find(block: &Block) -> Option<Shape> {
        if let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last()
            && is_box_pin(&call.func)
            && call.args.len() == 1
            && matches!(call.args.first(), Some(Expr::Async(_)))
        {
            return Some(Shape::BoxPinned);
        }
        block
            .stmts
            .iter()
            .position(is_let_body_async)
            .map(Shape::LetBody)
    }
}

/// Whether an attribute left on the fn is one rustc itself reads (lints,
/// docs, `cfg`, codegen hints), so no macro after `#[tracked]` needs to see
/// an `async fn`. Any other attribute may be a macro that does: the fn then
/// keeps its `async` (`Shape::KeptAsync`). So does a `#[must_use]` fn, for
/// rustc to report its output unused when awaited.
fn is_inert(attr: &Attribute) -> bool {
    let path = attr.path();
    if let Some(first) = path.segments.first() {
        // Tool attributes: `#[rustfmt::skip]`, `#[clippy::…]`.
        if path.segments.len() > 1 && (first.ident == "rustfmt" || first.ident == "clippy") {
            return true;
        }
    }
    // Not `must_use`: rustc reports an unused `f().await` of a `#[must_use]`
    // fn only when the fn is an `async fn`.
    const INERT: [&str; 10] = [
        "doc",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "deprecated",
        "inline",
        "cold",
        "cfg",
    ];
    INERT.iter().any(|name| path.is_ident(name))
}

/// Whether an attribute is `#[tracked]` itself, by the paths it is used
/// through: `tracked`, `tracked::tracked`, `::tracked::tracked`.
fn is_tracked(attr: &Attribute) -> bool {
    let mut names = attr.path().segments.iter().map(|s| &s.ident);
    match (names.next(), names.next(), names.next()) {
        (Some(only), None, None) => only == "tracked",
        (Some(krate), Some(name), None) => krate == "tracked" && name == "tracked",
        _ => false,
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else {
        return false;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segments.ends_with(&["Box".to_owned(), "pin".to_owned()])
}

fn is_let_body_async(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else {
        return false;
    };
    let syn::Pat::Ident(pat) = &local.pat else {
        return false;
    };
    pat.ident == "body"
        && local
            .init
            .as_ref()
            .is_some_and(|init| matches!(&*init.expr, Expr::Async(_)))
}

// Input: `#[tracked(type = "Consensus")] async fn run_round(s: S) -> R { body }`
// Output: `fn run_round(s: S) -> impl Future<Output = R> {
//     static __TRACKED_SITE: StaticSite = …; inventory::submit!(…);
//     let body = async move { <fake return edge>; <capture s>; body };
//     TrackedFn::new(&__TRACKED_SITE, owner, pick, body)
// }`
// (`Shape::KeptAsync` keeps `async fn … -> R` and ends in `….await`.)
fn expand_fn(
    function: &MaybeItemFn,
    args: &Args,
    shape: Shape,
    body: Body,
    spawns: &[SpawnSite],
) -> TokenStream {
    let MaybeItemFn {
        attrs, vis, sig, ..
    } = function;
    let Body {
        inner_attrs,
        mut block,
    } = body;
    let attrs = &expected_unused_async(attrs, &block);
    let sites = site_items(sig, args, spawns);
    let owner = match &args.owner {
        Some(owner) => {
            let runtime = runtime(owner.span());
            quote_spanned!(owner.span()=> #runtime::__private::owner(#owner))
        }
        None => quote!(::core::option::Option::None),
    };
    match shape {
        Shape::AsyncFn => {
            let edge = fake_return_edge(&sig.output);
            let mut sig = sig.clone();
            let mut used = std::collections::HashSet::new();
            idents(block.to_token_stream(), &mut used);
            if let Some(owner) = &args.owner {
                idents(owner.to_token_stream(), &mut used);
            }
            let (moves, renamed) = move_arguments(&mut sig, &used);
            let owner = match &args.owner {
                Some(expr) => {
                    let bindings = owner_bindings(expr, &renamed);
                    quote!({ #bindings #owner })
                }
                None => owner,
            };
            sig.asyncness = None;
            // The body in a block of its own: its items (`fn x() {}`, `use
            // tokio::spawn;`) must not hide the arguments the moves name.
            let body = returned(&sig.output, &edge, &moves, user_block(&block));
            let inner = pin_never(&sig.output, user_async(&block, body));
            sig.output = future_output(&sig);
            let wrapped = wrap(&sites, &owner, inner);
            let body = braced(&block, quote!(#(#inner_attrs)* #wrapped));
            quote! { #(#attrs)* #vis #sig #body }
        }
        Shape::KeptAsync => {
            let edge = fake_return_edge(&sig.output);
            let body = returned(&sig.output, &edge, &TokenStream::new(), user_block(&block));
            let inner = pin_never(&sig.output, user_async(&block, body));
            let wrapped = wrap(&sites, &owner, inner);
            let body = braced(&block, quote!(#(#inner_attrs)* #wrapped.await));
            quote! { #(#attrs)* #vis #sig #body }
        }
        // The sites are items of the fn's block, not of the async block:
        // a spawn before it (`let h = tokio::spawn(..); Box::pin(async ..)`)
        // names its site too.
        Shape::BoxPinned => {
            if let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut()
                && let Some(Expr::Async(inner)) = call.args.first_mut()
            {
                let body = quote!(#inner);
                let wrapped = wrap(&TokenStream::new(), &owner, body);
                let capture = inner.capture;
                *inner = syn::parse_quote!(async #capture { #wrapped.await });
            }
            let stmts = &block.stmts;
            quote! { #(#attrs)* #vis #sig { #(#inner_attrs)* #sites #(#stmts)* } }
        }
        Shape::LetBody(index) => {
            if let Stmt::Local(local) = &mut block.stmts[index]
                && let Some(init) = &mut local.init
                && let Expr::Async(inner) = &mut *init.expr
            {
                let body = quote!(#inner);
                let wrapped = wrap(&TokenStream::new(), &owner, body);
                let capture = inner.capture;
                *inner = syn::parse_quote!(async #capture { #wrapped.await });
            }
            let stmts = &block.stmts;
            quote! { #(#attrs)* #vis #sig { #(#inner_attrs)* #sites #(#stmts)* } }
        }
    }
}

/// The body's statements in a block with the body's own braces: rustc
/// gives a block the rules of its span's edition, and the user crate's may
/// not be this crate's 2024 (before 2024, the temporaries of a block's tail
/// expression are dropped after its locals, which a borrow may not allow).
///
/// The block is a match arm's body, where `unused_braces` does not take it,
/// now at the user's span, for needless braces around a one-line body's
/// value (as it would as a `let`'s value or a block's tail). The arm's body
/// is a scope of its own, so the tail's temporaries still drop after the
/// body's locals and before the arguments. A label would hide the block
/// from the lint too, but it could not be both unnameable from the body
/// and of the user's edition: a labelled block's span starts at its label,
/// so rustc takes its edition from the label's span, and a label with the
/// user's span is one `break '…` in the body can name. The `match` is this
/// macro's, so clippy does not take it for the user's
/// `match_single_binding`, but located at the body's closing brace: the
/// arm's span is its pattern's, and rustc says the tail's temporaries are
/// dropped at the end of it, as it says they are at that brace in the
/// `async fn`.
//
// Input: `{ stmts }`
// Output: `match () { () => { stmts } }`, the inner braces the user's.
fn user_block(body: &Block) -> TokenStream {
    let stmts = &body.stmts;
    let block = braced(body, quote!(#(#stmts)*));
    let end = Span::call_site().located_at(body.brace_token.span.close());
    quote_spanned!(end=> match () { () => #block })
}

/// `async move { tokens }` at the body's span, in the user's context: rustc
/// names a captured argument in a borrow error (`use of moved value: `v``)
/// only when the async block capturing it is not a macro's.
fn user_async(body: &Block, tokens: TokenStream) -> TokenStream {
    let at = body.brace_token.span.open();
    let block = braced(body, tokens);
    quote_spanned!(at=> async move #block)
}

/// `tokens` in braces with the span of the body's own. The fn's body has
/// them too: an item whose span (first token to last) ends in a token of
/// this macro's is taken as made by an external macro, where lints such as
/// `dead_code` and clippy's doc lints are not reported.
fn braced(body: &Block, tokens: TokenStream) -> TokenStream {
    let mut block = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, tokens);
    block.set_span(body.brace_token.span.join());
    TokenTree::Group(block).into_token_stream()
}

/// The async block's statements: the fake return edge, `prelude` and the
/// body, in a block whose value the async block returns (`let
/// __tracked_output = { edge; prelude; body }; return __tracked_output;`).
///
/// An async block ending in an expression whose type is a future (a fn
/// returning a `JoinHandle`, a `BoxFuture`) is what
/// `clippy::async_yields_async` denies, though an `async fn`'s body is not
/// linted so; an `#[allow]` on the block would hide the lint from the
/// body's own async blocks too, so the async block ends in a `return`
/// statement instead. That `return` is unreachable when the body diverges
/// (`loop {}`, a `panic!` or a `return` last), which only it, holding none
/// of the user's code, is allowed to be. The edge comes first in the
/// `let`'s block: `clippy::diverging_sub_expression` looks into a `let`'s
/// block only when nothing but items comes before its last statement, and
/// a body that is one `panic!()` or `return x;` is no sub-expression.
fn returned(
    output: &ReturnType,
    edge: &TokenStream,
    prelude: &TokenStream,
    body: TokenStream,
) -> TokenStream {
    // Typed as declared, so that a body of the wrong type is reported at
    // its last expression, as in an `async fn`, not at the `return`. A
    // plain `impl Trait` is left untyped: `let x: _` is a clippy lint.
    let (ty, _) = writable_output(output);
    let ty = match output {
        ReturnType::Type(_, declared) if matches!(**declared, Type::ImplTrait(_)) => None,
        _ => Some(quote!(: #ty)),
    };
    quote! {
        let __tracked_output #ty = { #edge #prelude #body };
        #[allow(unreachable_code, clippy::needless_return)]
        return __tracked_output;
    }
}

/// The fn's attributes, with `clippy::unused_async` taken out of an
/// `#[expect(…)]` and allowed when the body does not await: clippy would
/// have linted the `async fn`, but the expansion awaits or is not `async`,
/// so the expectation would be reported unfulfilled. A body that awaits
/// keeps it, unfulfilled as on the `async fn`.
fn expected_unused_async(attrs: &[Attribute], block: &Block) -> Vec<Attribute> {
    type Metas = syn::punctuated::Punctuated<syn::Meta, syn::Token![,]>;
    let is_unused_async = |meta: &syn::Meta| {
        let path = meta.path();
        path.segments.len() == 2
            && path.segments[0].ident == "clippy"
            && path.segments[1].ident == "unused_async"
    };
    let mut out = Vec::with_capacity(attrs.len());
    for attr in attrs {
        let expected = attr
            .path()
            .is_ident("expect")
            .then(|| attr.parse_args_with(Metas::parse_terminated).ok())
            .flatten()
            .filter(|metas| metas.iter().any(is_unused_async));
        let Some(metas) = expected.filter(|_| !awaits(block)) else {
            out.push(attr.clone());
            continue;
        };
        let (lint, rest): (Vec<_>, Vec<_>) = metas.into_iter().partition(is_unused_async);
        let lint = &lint[0];
        out.push(syn::parse_quote_spanned!(attr.span()=> #[allow(#lint)]));
        if rest.iter().any(|meta| matches!(meta, syn::Meta::Path(_))) {
            out.push(syn::parse_quote_spanned!(attr.span()=> #[expect(#(#rest),*)]));
        }
    }
    out
}

/// The statements that build the `TrackedFn` running `inner` (an async
/// block), ending in the expression that evaluates to it.
fn wrap(sites: &TokenStream, owner: &TokenStream, inner: TokenStream) -> TokenStream {
    let runtime = runtime(Span::call_site());
    quote! {
        #sites
        let __tracked_owner = #owner;
        let __tracked_body = #inner;
        #[allow(unused_imports)]
        use #runtime::__private::{
            PickAny as _, PickDebugErr as _, PickErr as _, PickOutcome as _,
        };
        let __tracked_pick = (&&&&&#runtime::__private::probe(&__tracked_body)).pick();
        #runtime::__private::TrackedFn::new(
            &__TRACKED_SITE,
            __tracked_owner,
            __tracked_pick,
            __tracked_body,
        )
    }
}

/// `-> impl Future<Output = R>` for an `async fn`'s `-> R`.
///
/// The `impl` carries a span of this macro's own (call-site hygiene, placed
/// at the user's return type for messages), not the user's: rustc decides
/// which lifetimes a return-position `impl Trait` captures by the edition of
/// its span, and this crate is edition 2024, where it captures every
/// lifetime in scope, as an `async fn`'s future does. With the user's span
/// in an edition 2021 crate it would capture none that its bounds do not
/// name, and arguments such as `&str` or `Cow<str>` (whose lifetime cannot
/// even be named here) would not compile. Type parameters are captured in
/// every edition.
///
/// The closing `>` has the user's span, at the end of the declared return
/// type (of the arguments, when there is none): rustc spans the fn's
/// signature from its first token to its last, and a signature ending in a
/// token of this macro's would be taken as made by an external macro,
/// where lints such as `dead_code` are not reported. The `impl` type keeps
/// the edition of its first token.
fn future_output(sig: &Signature) -> ReturnType {
    let fn_name = sig.ident.span();
    let (arrow, ty, at, end) = match &sig.output {
        ReturnType::Default => (
            syn::Token![->](fn_name),
            quote_spanned!(fn_name=> ()),
            fn_name,
            sig.paren_token.span.close(),
        ),
        ReturnType::Type(arrow, ty) => (*arrow, nameable(ty), ty.span(), last_span(ty)),
    };
    let span = Span::call_site().located_at(at);
    let mut close = proc_macro2::Punct::new('>', proc_macro2::Spacing::Alone);
    close.set_span(end);
    let future: Type = syn::parse_quote_spanned! {span=>
        impl ::core::future::Future<Output = #ty #close
    };
    ReturnType::Type(arrow, Box::new(future))
}

/// The span of the last token of `ty`.
fn last_span(ty: &Type) -> Span {
    match ty.to_token_stream().into_iter().last() {
        Some(TokenTree::Group(group)) => group.span_close(),
        Some(token) => token.span(),
        None => ty.span(),
    }
}

/// For a fn declared `-> !`, the body's future with its output fixed to
/// `!`: a `return` of `!` does not fix it, and the classifier's pick would.
fn pin_never(output: &ReturnType, body: TokenStream) -> TokenStream {
    match output {
        ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)) => {
            let runtime = runtime(Span::call_site());
            quote!(#runtime::__private::never(#body))
        }
        _ => body,
    }
}

/// The return type as it can be written outside a fn's return position:
/// `!` is stable only there, so `-> !` becomes `__private::Never`, which is
/// `!` by another name.
fn nameable(ty: &Type) -> TokenStream {
    match ty {
        Type::Never(never) => {
            let runtime = runtime(never.bang_token.span);
            quote_spanned!(never.bang_token.span=> #runtime::__private::Never)
        }
        ty => ty.to_token_stream(),
    }
}

/// Makes the body's async block own every argument, as an `async fn`'s
/// future does: an argument the body never mentions (a permit, a guard)
/// still lives until the body ends, and one it uses only in part (`self.id`)
/// is still moved whole rather than split by the block's precise captures.
///
/// A plain `name: T` argument stays as it is and is mentioned by reference
/// once in the block, which makes the `move` block capture the whole
/// variable without copying it into a local of its own (rustc's lowering of
/// `async fn` does that copy, so each argument there is stored twice). The
/// mentions come last argument first: captures are dropped in the order
/// they are made, so the arguments are dropped last first, as an `async
/// fn`'s are when its body ends or is dropped part-way. An argument that
/// neither the body nor `owner` mentions (`used` holds their identifiers)
/// and whose name does not start with `_` is mentioned as `let name =
/// &name;`, at the argument's span and with its lint attributes moved onto
/// the `let`, so that rustc says it is unused (or not, as those attributes
/// say) as it would of an `async fn`'s. Any
/// other pattern (`(a, b): (A, B)`, `_: T`, `ref x: T`) is renamed to
/// `__tracked_arg<N>` in the signature and destructured inside the block,
/// as rustc does for an `async fn`. Returns the statements for the block,
/// and the arguments renamed.
fn move_arguments(
    sig: &mut Signature,
    used: &std::collections::HashSet<String>,
) -> (TokenStream, Vec<Renamed>) {
    let mut whole = Vec::new();
    let mut destructure = Vec::new();
    let mut renamed = Vec::new();
    for (index, input) in sig.inputs.iter_mut().enumerate() {
        // An argument under `#[cfg]` (written, or applied by a
        // `#[cfg_attr]`) is mentioned under the same cfg.
        let cfg = crate::spawn::cfg_of(match &*input {
            syn::FnArg::Receiver(receiver) => &receiver.attrs,
            syn::FnArg::Typed(typed) => &typed.attrs,
        });
        let cfgs = if cfg.is_empty() {
            TokenStream::new()
        } else {
            crate::spawn::cfg_attr(&cfg)
        };
        match input {
            syn::FnArg::Receiver(receiver) => {
                let self_token = &receiver.self_token;
                whole.push(quote!(#cfgs let _ = &#self_token;));
            }
            syn::FnArg::Typed(typed) => match &*typed.pat {
                syn::Pat::Ident(syn::PatIdent {
                    by_ref: None,
                    subpat: None,
                    ident,
                    ..
                }) => {
                    let name = ident.unraw().to_string();
                    if used.contains(&ident.to_string()) || name.starts_with('_') {
                        // `_permit` is the user's name, mentioned here
                        // only to be held: no use clippy's pedantic
                        // `used_underscore_binding` should see.
                        whole.push(quote! {
                            #cfgs
                            #[allow(clippy::used_underscore_binding)]
                            let _ = &#ident;
                        });
                    } else {
                        // The attributes that may leave the argument out
                        // stay on it; the others, lints, move to the
                        // mention, as do the `cfg_attr`s among the former
                        // (with the lints they may apply too).
                        let lints: Vec<Attribute> = typed
                            .attrs
                            .iter()
                            .filter(|attr| !attr.path().is_ident("cfg"))
                            .cloned()
                            .collect();
                        typed.attrs.retain(|attr| {
                            !crate::spawn::cfg_of(std::slice::from_ref(attr)).is_empty()
                        });
                        whole.push(quote_spanned! {ident.span()=>
                            #cfgs #(#lints)* let #ident = &#ident;
                        });
                    }
                }
                pat => {
                    let name = quote::format_ident!("__tracked_arg{}", index);
                    let pat = pat.clone();
                    whole.push(quote!(#cfgs let _ = &#name;));
                    destructure.push(quote!(#cfgs let #pat = #name;));
                    renamed.push(Renamed {
                        cfgs: cfgs.clone(),
                        pat,
                        name: name.clone(),
                    });
                    *typed.pat = syn::Pat::Ident(syn::PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: name,
                        subpat: None,
                    });
                }
            },
        }
    }
    whole.reverse();
    (quote!(#(#whole)* #(#destructure)*), renamed)
}

/// An argument whose pattern `move_arguments` moved into the block.
struct Renamed {
    cfgs: TokenStream,
    pat: syn::Pat,
    name: syn::Ident,
}

/// The bindings the `owner = …` expression may use from arguments that
/// `move_arguments` renamed: it is evaluated when the fn is called, before
/// the block destructures them, so each pattern it mentions a binding of is
/// matched against a reference to its argument (`let (id, n) =
/// &__tracked_arg0;`), binding references, `mut` and `ref` dropped. Other
/// patterns are left out, so that an owner not using them changes nothing.
fn owner_bindings(owner: &Expr, renamed: &[Renamed]) -> TokenStream {
    let mut mentioned = std::collections::HashSet::new();
    idents(owner.to_token_stream(), &mut mentioned);
    let lets = renamed.iter().filter_map(|Renamed { cfgs, pat, name }| {
        let mut bound = BindingModes::default();
        let mut pat = pat.clone();
        bound.visit_pat_mut(&mut pat);
        bound.names.iter().any(|n| mentioned.contains(n)).then(|| {
            quote! {
                #cfgs
                #[allow(unused_variables, clippy::used_underscore_binding)]
                let #pat = &#name;
            }
        })
    });
    quote!(#(#lets)*)
}

/// Every identifier in `tokens` that may name a variable, groups included,
/// and every word of their literals: `format!("{tenant}")` uses `tenant`.
/// A field or method name (`self.id`, `v.len()`) or a path's later segment
/// (`Self::id`) names no variable, so an argument `id` that only such
/// names match is still reported unused, as in an `async fn`; `0..n` uses
/// `n`.
fn idents(tokens: TokenStream, out: &mut std::collections::HashSet<String>) {
    let is = |token: Option<&TokenTree>, ch: char| matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == ch);
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (index, token) in tokens.iter().enumerate() {
        let before = |back: usize| index.checked_sub(back).map(|at| &tokens[at]);
        match token {
            TokenTree::Ident(ident) => {
                let field = is(before(1), '.') && !is(before(2), '.');
                let segment = is(before(1), ':') && is(before(2), ':');
                if !(field || segment) {
                    out.insert(ident.to_string());
                }
            }
            TokenTree::Group(group) => idents(group.stream(), out),
            TokenTree::Literal(literal) => out.extend(
                literal
                    .to_string()
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(str::to_owned),
            ),
            TokenTree::Punct(_) => {}
        }
    }
}

/// Drops `mut` and `ref` from a pattern's bindings, so that matched against
/// a reference it binds references; collects the bound names.
#[derive(Default)]
struct BindingModes {
    names: Vec<String>,
}

impl VisitMut for BindingModes {
    fn visit_pat_ident_mut(&mut self, pat: &mut syn::PatIdent) {
        pat.by_ref = None;
        pat.mutability = None;
        self.names.push(pat.ident.to_string());
        syn::visit_mut::visit_pat_ident_mut(self, pat);
    }
}

/// The fn's static site and one per rewritten spawn, each submitted to the
/// catalogue.
fn site_items(sig: &Signature, args: &Args, spawns: &[SpawnSite]) -> TokenStream {
    let ident = &sig.ident;
    // `r#match` is named `match`, as the spawns that call it name it.
    let fn_name = ident.unraw().to_string();
    let base = match &args.name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name)),
    };
    let runtime = runtime(Span::call_site());
    let ty = match &args.ty {
        Some(ty) => quote!(#runtime::__private::TaskType::new(#ty)),
        None => quote!(#runtime::__private::TaskType::GENERAL),
    };
    let tier = match args.tier {
        Some((tier, _)) => quote!(::core::option::Option::Some(#tier)),
        None => quote!(::core::option::Option::None),
    };
    let fn_site = static_site(
        &syn::Ident::new("__TRACKED_SITE", Span::call_site()),
        &base,
        &ty,
        quote!(Fn),
        &tier,
        &fn_name,
        ident.span(),
    );
    let spawn_sites = spawns.iter().map(|spawn| {
        let suffix = format!("::{}", spawn.suffix);
        let name = match &args.name {
            Some(name) => quote!(::core::concat!(#name, #suffix)),
            None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name, #suffix)),
        };
        let cfg = &spawn.cfg;
        let site = static_site(
            &spawn.ident,
            &name,
            &ty,
            quote!(Spawn),
            &quote!(::core::option::Option::None),
            &spawn.target,
            spawn.span,
        );
        // A spawn rewritten under some cfgs only has its site under those.
        if cfg.is_empty() {
            site
        } else {
            let items = syn::parse2::<syn::File>(site)
                .expect("a site is items")
                .items;
            let cfg = crate::spawn::cfg_attr(cfg);
            quote!(#(#cfg #items)*)
        }
    });
    quote! { #fn_site #(#spawn_sites)* }
}

/// A site's static and its `inventory` entry; `target` is the fn's name, or
/// the spawned call's (see `SpawnSite`).
fn static_site(
    ident: &syn::Ident,
    name: &TokenStream,
    ty: &TokenStream,
    kind: TokenStream,
    tier: &TokenStream,
    target: &str,
    span: Span,
) -> TokenStream {
    // `line!()` and `column!()` carry the user's span, so they give the
    // location of the fn's name or of the spawn call.
    let file = quote_spanned!(span=> ::core::file!());
    let line = quote_spanned!(span=> ::core::line!());
    let column = quote_spanned!(span=> ::core::column!());
    let runtime = runtime(Span::call_site());
    quote! {
        static #ident: #runtime::__private::StaticSite = #runtime::__private::StaticSite::__new(
            #name,
            #ty,
            #runtime::__private::SiteKind::#kind,
            ::core::module_path!(),
            #file,
            #line,
            #column,
            #tier,
            #target,
        );
        #runtime::__private::inventory::submit! {
            #runtime::__private::Entry(&#ident)
        }
    }
}

/// A `return` of the declared type that never runs, so that inference and
/// type errors inside the wrapped body follow the fn's signature, as in an
/// `async fn`. `impl Trait` cannot name a `let`, so it is erased to `_`.
fn fake_return_edge(output: &ReturnType) -> TokenStream {
    let (ty, span) = writable_output(output);
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __tracked_fake_return: #ty = loop {};
            return __tracked_fake_return;
        }
    }
}

/// The declared output as a `let` can be typed (`impl Trait` erased to
/// `_`, `!` named), and the span of the declared type.
fn writable_output(output: &ReturnType) -> (TokenStream, Span) {
    match output {
        ReturnType::Default => (quote!(()), Span::call_site()),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            ImplTraitEraser.visit_type_mut(&mut ty);
            let span = ty.span();
            (nameable(&ty), span)
        }
    }
}

struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}
