//! Rewrites tokio spawns inside an annotated fn's body into tracked spawns.
//!
//! Rewritten: calls to `tokio::spawn`, `tokio::task::spawn`,
//! `tokio::task::spawn_blocking` and `tokio::task::spawn_local` (with or
//! without a leading `::`), and calls through names a `use` item *inside the
//! fn body* brings in from tokio (`use tokio::spawn;`, `use tokio::task;`,
//! `use tokio::task::{spawn_blocking as blocking};`, `use tokio as tk;`,
//! `use tokio::*;`), in the block holding the `use` and where nothing of
//! the same name hides it, as rustc resolves names: a local binding (a
//! `let`, a closure's parameter, a pattern), an item or an import of an
//! inner block (a glob import of anything but tokio may bring in any name:
//! it hides them all), each under its `#[cfg]` (one written, one a
//! `#[cfg_attr]` applies, one on a closure's parameter).
//!
//! Closures and async blocks in the body are searched, and so are the
//! macros in `EXPRESSION_MACROS` (`vec!`, `tokio::join!`,
//! `tokio::select!`…), whose arguments are expressions: visited as such when
//! they are separated by commas or form `select!`'s branches (tokio's or
//! `futures`', with `default =>` and `complete =>` arms) or `matches!`'s
//! pattern and guard (whose bindings hide names in their arm), token by
//! token otherwise (a group there that parses as an expression, a block or
//! a tuple, is visited as one). Nested items (fns, impls, modules, `macro_rules!`) and
//! other macros are not, since their tokens may mean something else.
//! Imports at module level are invisible to an attribute on a fn, so a bare
//! `spawn(…)` imported there is left alone, as are method calls such as
//! `join_set.spawn(…)` whose receiver type a macro cannot know.

use std::collections::HashMap;

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprCall, Item, Pat, Stmt, UseTree};

use crate::path::runtime;

/// Which tokio function a call goes to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SpawnFn {
    Async,
    Blocking,
    Local,
}

impl SpawnFn {
    fn of(name: &str) -> Option<SpawnFn> {
        match name {
            "spawn" => Some(SpawnFn::Async),
            "spawn_blocking" => Some(SpawnFn::Blocking),
            "spawn_local" => Some(SpawnFn::Local),
            _ => None,
        }
    }

    fn display(self) -> &'static str {
        match self {
            SpawnFn::Async => "tokio::spawn",
            SpawnFn::Blocking => "tokio::task::spawn_blocking",
            SpawnFn::Local => "tokio::task::spawn_local",
        }
    }
}

/// One rewritten spawn, to be declared as a static site.
pub(crate) struct SpawnSite {
    pub(crate) ident: syn::Ident,
    /// The name's suffix after the enclosing fn's name.
    pub(crate) suffix: String,
    /// The spawned call's fn or method name, for claiming; may be empty.
    pub(crate) target: String,
    pub(crate) span: Span,
    /// The cfg under which the site exists (see `Cfg`): that of the
    /// statements, expressions, match arms and struct fields around the
    /// call, and the one under which its path names tokio's spawn function,
    /// so the site is declared exactly where the spawn is.
    pub(crate) cfg: Cfg,
}

/// The spawns rewritten in a body, and the calls that could not be.
pub(crate) struct Rewritten {
    pub(crate) sites: Vec<SpawnSite>,
    pub(crate) errors: Option<syn::Error>,
}

/// Finds and rewrites the spawns in `block`. A call with the wrong number
/// of arguments is reported and replaced by a block that evaluates them and
/// diverges, so that rustc does not report it a second time.
pub(crate) fn rewrite(block: &mut Block) -> Rewritten {
    let mut rewriter = Rewriter {
        scopes: Vec::new(),
        sites: Vec::new(),
        context: Cfg::new(),
        names: HashMap::new(),
        errors: None,
    };
    rewriter.visit_block_mut(block);
    Rewritten {
        sites: rewriter.sites,
        errors: rewriter.errors,
    }
}

/// The names one scope of the body brings in, as rustc looks them up: a
/// block's items (seen from the whole block: `use` items and the names
/// other items declare) and the local bindings made so far (a `let`
/// before the call, a closure's or match arm's pattern), which hide the
/// items. An inner scope hides an outer one.
///
/// Each name comes with the `#[cfg]` of the `use`, item or `let` that
/// makes it: under another cfg it is absent, and the name means what it
/// means without it (see [`Rewriter::resolve`]).
#[derive(Default)]
struct Scope {
    /// Values a `use` or an item brings in: `spawn`, `go` (from `use
    /// tokio::spawn as go`), … → the function; `None` for any other value,
    /// which hides an outer scope's.
    functions: HashMap<String, Entries<Option<SpawnFn>>>,
    /// Modules (and types) a `use` or an item brings in: the tokio path it
    /// names (`tokio` for `use tokio;` or `use tokio as tk;`,
    /// `tokio::task` for `use tokio::task;`), or `None` for any other.
    modules: HashMap<String, Entries<Option<Vec<String>>>>,
    /// The tokio paths of glob imports (`use tokio::task::*;`), below the
    /// explicit names.
    globs: Entries<Vec<String>>,
    /// Other glob imports (`use crate::pool::*;`), which may bring in any
    /// value: below the explicit names, they hide an outer scope's.
    other_globs: Entries<()>,
    /// Local bindings: values, so they hide functions but not modules.
    locals: Entries<String>,
    /// Macros a `use` brings in (any name it imports may be one) or a
    /// `macro_rules!` of the body declares, from where it is declared on:
    /// whether it is std's (`use std::dbg;`). Only `dbg!` is looked up.
    macros: HashMap<String, Entries<bool>>,
}

/// The predicates of the `#[cfg(…)]` attributes on a statement, which
/// must all hold for it to exist; empty for one that always does.
pub(crate) type Cfg = Vec<TokenStream>;

/// What a scope brings in, each under its cfg.
type Entries<T> = Vec<(Cfg, T)>;

/// The cfg of a statement, closure or fn parameter or item with `attrs`: each
/// `#[cfg(p)]`'s `p`, and `any(not(q), p)` for a `cfg(p)` that
/// `#[cfg_attr(q, …)]` applies (nested `cfg_attr`s alike), which rustc
/// expands before it strips the statement.
pub(crate) fn cfg_of(attrs: &[syn::Attribute]) -> Cfg {
    let mut cfg = Cfg::new();
    for attr in attrs {
        collect_cfg(&attr.meta, &mut cfg);
    }
    cfg
}

/// Adds the predicates of `meta`, if it is a `cfg` or a `cfg_attr`
/// applying one, to `out`. A malformed `cfg_attr` adds none: rustc reports
/// it.
//
// Input: `cfg_attr(feature = "mock", cfg(not(test)), allow(dead_code))`
// Output: `any(not(feature = "mock"), not(test))`
fn collect_cfg(meta: &syn::Meta, out: &mut Cfg) {
    let syn::Meta::List(list) = meta else {
        return;
    };
    if list.path.is_ident("cfg") {
        out.push(list.tokens.clone());
        return;
    }
    if !list.path.is_ident("cfg_attr") {
        return;
    }
    let parser = syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated;
    let Ok(args) = list.parse_args_with(parser) else {
        return;
    };
    let mut args = args.into_iter();
    let Some(predicate) = args.next() else {
        return;
    };
    let mut applied = Cfg::new();
    for attr in args {
        collect_cfg(&attr, &mut applied);
    }
    out.extend(
        applied
            .into_iter()
            .map(|cfg| quote!(any(not(#predicate), #cfg))),
    );
}

/// An expression's outer attributes (`#[cfg(…)]` on an expression
/// statement's, an argument's, an array or tuple element's).
fn expr_attrs(expr: &Expr) -> &[syn::Attribute] {
    match expr {
        Expr::Array(e) => &e.attrs,
        Expr::Assign(e) => &e.attrs,
        Expr::Async(e) => &e.attrs,
        Expr::Await(e) => &e.attrs,
        Expr::Binary(e) => &e.attrs,
        Expr::Block(e) => &e.attrs,
        Expr::Break(e) => &e.attrs,
        Expr::Call(e) => &e.attrs,
        Expr::Cast(e) => &e.attrs,
        Expr::Closure(e) => &e.attrs,
        Expr::Const(e) => &e.attrs,
        Expr::Continue(e) => &e.attrs,
        Expr::Field(e) => &e.attrs,
        Expr::ForLoop(e) => &e.attrs,
        Expr::Group(e) => &e.attrs,
        Expr::If(e) => &e.attrs,
        Expr::Index(e) => &e.attrs,
        Expr::Infer(e) => &e.attrs,
        Expr::Let(e) => &e.attrs,
        Expr::Lit(e) => &e.attrs,
        Expr::Loop(e) => &e.attrs,
        Expr::Macro(e) => &e.attrs,
        Expr::Match(e) => &e.attrs,
        Expr::MethodCall(e) => &e.attrs,
        Expr::Paren(e) => &e.attrs,
        Expr::Path(e) => &e.attrs,
        Expr::Range(e) => &e.attrs,
        Expr::RawAddr(e) => &e.attrs,
        Expr::Reference(e) => &e.attrs,
        Expr::Repeat(e) => &e.attrs,
        Expr::Return(e) => &e.attrs,
        Expr::Struct(e) => &e.attrs,
        Expr::Try(e) => &e.attrs,
        Expr::TryBlock(e) => &e.attrs,
        Expr::Tuple(e) => &e.attrs,
        Expr::Unary(e) => &e.attrs,
        Expr::Unsafe(e) => &e.attrs,
        Expr::While(e) => &e.attrs,
        Expr::Yield(e) => &e.attrs,
        _ => &[],
    }
}

/// The attributes written before a pattern: a closure parameter's
/// (`|#[cfg(test)] spawn: Spawner| …`).
fn pat_attrs(pat: &Pat) -> &[syn::Attribute] {
    match pat {
        Pat::Const(pat) => &pat.attrs,
        Pat::Ident(pat) => &pat.attrs,
        Pat::Lit(pat) => &pat.attrs,
        Pat::Macro(pat) => &pat.attrs,
        Pat::Or(pat) => &pat.attrs,
        Pat::Paren(pat) => &pat.attrs,
        Pat::Path(pat) => &pat.attrs,
        Pat::Range(pat) => &pat.attrs,
        Pat::Reference(pat) => &pat.attrs,
        Pat::Rest(pat) => &pat.attrs,
        Pat::Slice(pat) => &pat.attrs,
        Pat::Struct(pat) => &pat.attrs,
        Pat::Tuple(pat) => &pat.attrs,
        Pat::TupleStruct(pat) => &pat.attrs,
        Pat::Type(pat) => &pat.attrs,
        Pat::Wild(pat) => &pat.attrs,
        _ => &[],
    }
}

/// A `#[cfg(…)]` that holds when all of `cfg` does.
pub(crate) fn cfg_attr(cfg: &[TokenStream]) -> TokenStream {
    quote!(#[cfg(all(#(#cfg),*))])
}

/// An identifier as a name (`r#spawn` is `spawn`).
fn name(ident: &syn::Ident) -> String {
    ident.unraw().to_string()
}

impl Scope {
    /// A block's scope: its own items (a nested block's are its own).
    fn of_block(block: &Block) -> Scope {
        let mut scope = Scope::default();
        for stmt in &block.stmts {
            let Stmt::Item(item) = stmt else {
                continue;
            };
            let (attrs, value, ty) = match item {
                Item::Use(item) => {
                    scope.collect_tree(&cfg_of(&item.attrs), &mut Vec::new(), &item.tree);
                    continue;
                }
                Item::ExternCrate(item) => {
                    let local = item.rename.as_ref().map_or(&item.ident, |(_, r)| r);
                    let path = (item.ident == "tokio").then(|| vec!["tokio".to_owned()]);
                    let entries = scope.modules.entry(name(local)).or_default();
                    entries.push((cfg_of(&item.attrs), path));
                    continue;
                }
                Item::Fn(item) => (&item.attrs, Some(&item.sig.ident), None),
                Item::Const(item) => (&item.attrs, Some(&item.ident), None),
                Item::Static(item) => (&item.attrs, Some(&item.ident), None),
                // A tuple or unit struct is a value too: its constructor.
                Item::Struct(item) => match item.fields {
                    syn::Fields::Named(_) => (&item.attrs, None, Some(&item.ident)),
                    _ => (&item.attrs, Some(&item.ident), Some(&item.ident)),
                },
                Item::Mod(item) => (&item.attrs, None, Some(&item.ident)),
                Item::Enum(item) => (&item.attrs, None, Some(&item.ident)),
                Item::Union(item) => (&item.attrs, None, Some(&item.ident)),
                Item::Type(item) => (&item.attrs, None, Some(&item.ident)),
                Item::Trait(item) => (&item.attrs, None, Some(&item.ident)),
                _ => continue,
            };
            let cfg = cfg_of(attrs);
            if let Some(value) = value {
                let entries = scope.functions.entry(name(value)).or_default();
                entries.push((cfg.clone(), None));
            }
            if let Some(ty) = ty {
                let entries = scope.modules.entry(name(ty)).or_default();
                entries.push((cfg, None));
            }
        }
        scope
    }

    /// A scope of the local bindings `patterns` make.
    fn of_bindings<'a>(patterns: impl IntoIterator<Item = &'a Pat>) -> Scope {
        let mut scope = Scope::default();
        for pat in patterns {
            scope.bind(pat, &Cfg::new());
        }
        scope
    }

    /// Adds the bindings of `pat`, which exist under `cfg`.
    fn bind(&mut self, pat: &Pat, cfg: &Cfg) {
        struct Bindings<'a>(&'a mut Vec<(Cfg, String)>, &'a Cfg);
        impl syn::visit::Visit<'_> for Bindings<'_> {
            fn visit_pat_ident(&mut self, pat: &syn::PatIdent) {
                self.0.push((self.1.clone(), name(&pat.ident)));
                syn::visit::visit_pat_ident(self, pat);
            }
        }
        syn::visit::Visit::visit_pat(&mut Bindings(&mut self.locals, cfg), pat);
    }

    /// Whether a `use` item brings in something of tokio's that `#[tracked]`
    /// rewrites calls through.
    fn imports_tokio(item: &syn::ItemUse) -> bool {
        let mut scope = Scope::default();
        scope.collect_tree(&Cfg::new(), &mut Vec::new(), &item.tree);
        !scope.globs.is_empty()
            || scope.functions.values().flatten().any(|(_, f)| f.is_some())
            || scope.modules.values().flatten().any(|(_, path)| {
                let path: Vec<&str> = path.iter().flatten().map(String::as_str).collect();
                matches!(path.as_slice(), ["tokio"] | ["tokio", "task"])
            })
    }

    fn collect_tree(&mut self, cfg: &Cfg, prefix: &mut Vec<String>, tree: &UseTree) {
        let full = |prefix: &Vec<String>, last: &syn::Ident| {
            let mut path = prefix.clone();
            if last != "self" {
                path.push(name(last));
            }
            path
        };
        match tree {
            UseTree::Path(path) => {
                prefix.push(name(&path.ident));
                self.collect_tree(cfg, prefix, &path.tree);
                prefix.pop();
            }
            UseTree::Name(used) => {
                let path = full(prefix, &used.ident);
                let local = path.last().cloned().unwrap_or_default();
                self.add(cfg, path, local);
            }
            UseTree::Rename(rename) => {
                self.add(cfg, full(prefix, &rename.ident), name(&rename.rename));
            }
            UseTree::Glob(_) => {
                if prefix.first().is_some_and(|first| first == "tokio") {
                    self.globs.push((cfg.clone(), prefix.clone()));
                } else {
                    self.other_globs.push((cfg.clone(), ()));
                }
            }
            UseTree::Group(group) => {
                for tree in &group.items {
                    self.collect_tree(cfg, prefix, tree);
                }
            }
        }
    }

    /// What `use path as local;` brings in. A name from elsewhere may be a
    /// value or a module: it hides both.
    fn add(&mut self, cfg: &Cfg, path: Vec<String>, local: String) {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let function = spawn_path(&parts);
        let tokio = parts.first() == Some(&"tokio");
        let macros = self.macros.entry(local.clone()).or_default();
        macros.push((cfg.clone(), parts == ["std", "dbg"]));
        let functions = self.functions.entry(local.clone()).or_default();
        functions.push((cfg.clone(), function));
        if function.is_none() {
            let modules = self.modules.entry(local).or_default();
            modules.push((cfg.clone(), tokio.then_some(path)));
        }
    }
}

/// What a path means under each cfg: `(cfg, function)` pairs whose cfgs
/// are disjoint and together always hold; a single pair with an empty cfg
/// when no `#[cfg]` decides it.
type Meanings = Vec<(Cfg, Option<SpawnFn>)>;

/// The tokio spawn function `path` names from inside `scopes` (innermost
/// last), if any, under each cfg; `leading`: the path starts with `::` (a
/// crate).
fn resolve(scopes: &[Scope], leading: bool, path: &[String]) -> Meanings {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    if leading {
        return vec![(Cfg::new(), spawn_path(&parts))];
    }
    let under = |prefix: &[String], rest: &[&str]| {
        let mut full: Vec<&str> = prefix.iter().map(String::as_str).collect();
        full.extend_from_slice(rest);
        spawn_path(&full)
    };
    match parts.as_slice() {
        [single] => {
            let candidates = scopes.iter().rev().flat_map(|scope| {
                let locals = scope.locals.iter().filter(|(_, local)| local == single);
                let functions = scope.functions.get(*single).into_iter().flatten();
                let globs = scope.globs.iter().filter_map(|(cfg, glob)| {
                    under(glob, &[single]).map(|function| (cfg.clone(), Some(function)))
                });
                let other_globs = scope
                    .other_globs
                    .iter()
                    .map(|(cfg, ())| (cfg.clone(), None));
                locals
                    .map(|(cfg, _)| (cfg.clone(), None))
                    .chain(functions.cloned())
                    .chain(globs)
                    .chain(other_globs)
            });
            first_of(candidates, None)
        }
        [first, rest @ ..] => {
            let candidates = scopes.iter().rev().flat_map(|scope| {
                let modules = scope.modules.get(*first).into_iter().flatten();
                // `task` from `use tokio::*;`.
                let globs = scope.globs.iter().filter(|(_, glob)| glob.len() == 1);
                let globs = globs.filter(|_| *first == "task").map(|(cfg, glob)| {
                    let mut path = glob.clone();
                    path.push("task".to_owned());
                    (cfg.clone(), under(&path, rest))
                });
                modules
                    .map(|(cfg, module)| {
                        (cfg.clone(), module.as_ref().and_then(|m| under(m, rest)))
                    })
                    .chain(globs)
            });
            first_of(candidates, spawn_path(&parts))
        }
        [] => vec![(Cfg::new(), None)],
    }
}

/// The meaning of the first of `candidates` (innermost first) that exists
/// under each cfg, and `otherwise` under the cfgs where none does.
fn first_of(
    candidates: impl IntoIterator<Item = (Cfg, Option<SpawnFn>)>,
    otherwise: Option<SpawnFn>,
) -> Meanings {
    let mut meanings = Vec::new();
    // Where no candidate so far exists.
    let mut rest = Cfg::new();
    for (cfg, function) in candidates {
        let mut when = rest.clone();
        when.extend(cfg.iter().cloned());
        meanings.push((when, function));
        if cfg.is_empty() {
            return meanings;
        }
        rest.push(quote!(not(all(#(#cfg),*))));
    }
    meanings.push((rest, otherwise));
    meanings
}

/// A spawn function named by its full path.
fn spawn_path(path: &[&str]) -> Option<SpawnFn> {
    match path {
        ["tokio", "spawn"] => Some(SpawnFn::Async),
        ["tokio", "task", function] => SpawnFn::of(function),
        _ => None,
    }
}

struct Rewriter {
    /// The scopes around the expression being visited, innermost last.
    scopes: Vec<Scope>,
    sites: Vec<SpawnSite>,
    /// The cfg of the statements, expressions, match arms and struct
    /// fields around the one being visited (`#[cfg(…)] let h = …;`): where
    /// it is false they are gone, and so is a spawn in them and its site.
    context: Cfg,
    /// How many spawns of each name this fn has, to number repeats: every
    /// spawn written counts, whatever its cfg, so its number is the same
    /// in every build.
    names: HashMap<String, usize>,
    errors: Option<syn::Error>,
}

impl VisitMut for Rewriter {
    fn visit_item_mut(&mut self, item: &mut Item) {
        // Nested items are not part of the annotated fn. A `use` of tokio's
        // spawn functions may have no call left once they are rewritten.
        if let Item::Use(item) = item
            && Scope::imports_tokio(item)
        {
            item.attrs.push(syn::parse_quote!(#[allow(unused_imports)]));
        }
    }

    fn visit_block_mut(&mut self, block: &mut Block) {
        self.scopes.push(Scope::of_block(block));
        for stmt in &mut block.stmts {
            self.visit_stmt_mut(stmt);
            let scope = self.scopes.last_mut().expect("pushed above");
            match stmt {
                // A `let` hides what it binds from the statements after it.
                Stmt::Local(local) => scope.bind(&local.pat, &cfg_of(&local.attrs)),
                // So does a `macro_rules!` the macro it declares.
                Stmt::Item(Item::Macro(item)) if item.mac.path.is_ident("macro_rules") => {
                    if let Some(ident) = &item.ident {
                        let macros = scope.macros.entry(name(ident)).or_default();
                        macros.push((cfg_of(&item.attrs), false));
                    }
                }
                _ => {}
            }
        }
        self.scopes.pop();
    }

    fn visit_expr_closure_mut(&mut self, closure: &mut syn::ExprClosure) {
        // A parameter under `#[cfg]` binds under that cfg only.
        let mut scope = Scope::default();
        for input in &closure.inputs {
            scope.bind(input, &cfg_of(pat_attrs(input)));
        }
        self.within(scope, |this| this.visit_expr_mut(&mut closure.body));
    }

    fn visit_expr_for_loop_mut(&mut self, each: &mut syn::ExprForLoop) {
        self.visit_expr_mut(&mut each.expr);
        let scope = Scope::of_bindings([&*each.pat]);
        self.within(scope, |this| this.visit_block_mut(&mut each.body));
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        let scope = Scope::of_bindings([&arm.pat]);
        self.under(cfg_of(&arm.attrs), |this| {
            this.within(scope, |this| {
                if let Some((_, guard)) = &mut arm.guard {
                    this.visit_condition(guard);
                }
                this.visit_expr_mut(&mut arm.body);
            });
        });
    }

    fn visit_field_value_mut(&mut self, field: &mut syn::FieldValue) {
        self.under(cfg_of(&field.attrs), |this| {
            this.visit_expr_mut(&mut field.expr);
        });
    }

    fn visit_expr_if_mut(&mut self, branch: &mut syn::ExprIf) {
        self.within(Scope::default(), |this| {
            this.visit_condition(&mut branch.cond);
            this.visit_block_mut(&mut branch.then_branch);
        });
        if let Some((_, otherwise)) = &mut branch.else_branch {
            self.visit_expr_mut(otherwise);
        }
    }

    fn visit_expr_while_mut(&mut self, each: &mut syn::ExprWhile) {
        self.within(Scope::default(), |this| {
            this.visit_condition(&mut each.cond);
            this.visit_block_mut(&mut each.body);
        });
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        let Some(last) = mac.path.segments.last() else {
            return;
        };
        let macro_name = last.ident.to_string();
        if !EXPRESSION_MACROS.contains(&macro_name.as_str()) {
            return;
        }
        // Arguments that are expressions between commas (`vec![a, b]`,
        // `join!(a, b)`, `assert!(ok, "{}", x)`) or `vec!`'s `x; n`, and
        // `select!`'s and `matches!`'s, whose patterns bind names in their
        // arm, are visited as expressions, with the bindings they make;
        // others (a `select!` this parser does not know) token by token.
        let parser = match macro_name.as_str() {
            "select" | "select_biased" => parse_select,
            "matches" => parse_matches,
            _ => parse_separated,
        };
        if let Ok(mut parts) = syn::parse::Parser::parse2(parser, mac.tokens.clone()) {
            let mut pattern = None;
            for part in &mut parts {
                match part {
                    Part::Tokens(_) => {}
                    Part::Pattern(pat) => pattern = Some(pat.clone()),
                    Part::Expr(expr) => self.visit_expr_mut(expr),
                    Part::Arm(expr) => {
                        let scope = Scope::of_bindings(&pattern);
                        self.within(scope, |this| this.visit_expr_mut(expr));
                    }
                }
            }
            mac.tokens = parts.iter().map(Part::to_token_stream).collect();
            return;
        }
        mac.tokens = self.rewrite_tokens(mac.tokens.clone());
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        // An expression statement's attributes are its expression's, seen
        // by `visit_expr_mut`; a nested item is not visited.
        let attrs = match &*stmt {
            Stmt::Local(local) => &local.attrs[..],
            Stmt::Macro(mac) => &mac.attrs,
            Stmt::Item(_) | Stmt::Expr(..) => &[],
        };
        let cfg = cfg_of(attrs);
        self.under(cfg, |this| this.visit_stmt_under_cfg(stmt));
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        let cfg = cfg_of(expr_attrs(expr));
        self.under(cfg, |this| this.visit_expr_under_cfg(expr));
    }
}

impl Rewriter {
    /// Visits with `cfg` added to the context.
    fn under(&mut self, cfg: Cfg, visit: impl FnOnce(&mut Self)) {
        let outer = self.context.len();
        self.context.extend(cfg);
        visit(self);
        self.context.truncate(outer);
    }

    fn visit_stmt_under_cfg(&mut self, stmt: &mut Stmt) {
        if let Stmt::Macro(mac) = stmt
            && mac.attrs.is_empty()
            && is_std_dbg(&self.scopes, &mac.mac.path)
        {
            if let Some(dbg) = self.visit_dbg(&mut mac.mac) {
                *stmt = Stmt::Expr(dbg, mac.semi_token);
            }
            return;
        }
        visit_mut::visit_stmt_mut(self, stmt);
    }

    fn visit_expr_under_cfg(&mut self, expr: &mut Expr) {
        if let Expr::Macro(mac) = expr
            && is_std_dbg(&self.scopes, &mac.mac.path)
        {
            if let Some(mut dbg) = self.visit_dbg(&mut mac.mac) {
                if let Expr::Block(block) = &mut dbg {
                    block.attrs = std::mem::take(&mut mac.attrs);
                }
                *expr = dbg;
            }
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
        let Expr::Call(call) = expr else {
            return;
        };
        // The call's attributes (`#[cfg(…)]` on a statement `tokio::spawn(…);`)
        // stay on what replaces it, a call or a block.
        let attrs = std::mem::take(&mut call.attrs);
        self.rewrite_spawn(expr);
        match expr {
            Expr::Call(call) => call.attrs = attrs,
            Expr::Block(block) => block.attrs = attrs,
            _ => {}
        }
    }

    /// Rewrites `expr`, a call, if it calls a tokio spawn function.
    fn rewrite_spawn(&mut self, expr: &mut Expr) {
        let Expr::Call(call) = expr else {
            return;
        };
        let meanings = self.spawn_fn(call);
        let function = match meanings.as_slice() {
            [(cfg, Some(function))] if cfg.is_empty() => *function,
            _ if meanings.iter().any(|(_, function)| function.is_some()) => {
                // Rewritten under the cfgs where it is tokio's; where it is
                // not, rustc checks the arguments.
                if call.args.len() == 1 {
                    *expr = self.rewrite_under_cfgs(call, &meanings);
                }
                return;
            }
            _ => return,
        };
        if call.args.len() != 1 {
            let message = format!(
                "`{}` takes exactly one argument, found {}",
                function.display(),
                call.args.len()
            );
            let error = syn::Error::new(call.paren_token.span.join(), message);
            match &mut self.errors {
                Some(errors) => errors.combine(error),
                None => self.errors = Some(error),
            }
            let args = call.args.iter();
            *expr = syn::parse_quote_spanned! {call.span()=>
                {
                    #(let _ = #args;)*
                    ::core::unreachable!()
                }
            };
            return;
        }
        let (argument, name, target) = self.spawned(call);
        let spawn = self.site(call.span(), Cfg::new(), name, target, |site| {
            spawn_call(function, site, &argument, call.span())
        });
        *expr = syn::parse2(spawn).expect("generated spawn is an expression");
    }
}

/// A piece of an expression macro's arguments.
enum Part {
    Tokens(TokenStream),
    /// A pattern, binding names in the next `Arm`.
    Pattern(Pat),
    Expr(Expr),
    /// An expression that sees the last pattern's bindings: `matches!`'s
    /// guard, a `select!` branch's handler.
    Arm(Expr),
}

impl Part {
    fn to_token_stream(&self) -> TokenStream {
        match self {
            Part::Tokens(tokens) => tokens.clone(),
            Part::Pattern(pat) => pat.to_token_stream(),
            Part::Expr(expr) | Part::Arm(expr) => expr.to_token_stream(),
        }
    }
}

/// `a, b, c`, or `vec!`'s `element; count`.
fn parse_separated(input: syn::parse::ParseStream<'_>) -> syn::Result<Vec<Part>> {
    let repeat = input.fork();
    if repeat.parse::<Expr>().is_ok() && repeat.peek(syn::Token![;]) {
        let element = Part::Expr(input.parse()?);
        let semi = Part::Tokens(input.parse::<syn::Token![;]>()?.to_token_stream());
        return Ok(vec![element, semi, Part::Expr(input.parse()?)]);
    }
    let args = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated(input)?;
    let pairs = args.into_pairs().map(|pair| {
        let (expr, comma) = pair.into_tuple();
        [Part::Expr(expr), Part::Tokens(comma.to_token_stream())]
    });
    Ok(pairs.flatten().collect())
}

/// `matches!(expr, pattern if guard)`.
fn parse_matches(input: syn::parse::ParseStream<'_>) -> syn::Result<Vec<Part>> {
    let mut parts = vec![Part::Expr(input.parse()?)];
    parts.push(Part::Tokens(
        input.parse::<syn::Token![,]>()?.to_token_stream(),
    ));
    parts.push(Part::Pattern(Pat::parse_multi_with_leading_vert(input)?));
    if input.peek(syn::Token![if]) {
        parts.push(Part::Tokens(
            input.parse::<syn::Token![if]>()?.to_token_stream(),
        ));
        parts.push(Part::Arm(input.parse()?));
    }
    let comma: Option<syn::Token![,]> = input.parse()?;
    parts.push(Part::Tokens(comma.to_token_stream()));
    Ok(parts)
}

/// `tokio::select!`'s branches: `biased;` first, then `pattern = future,
/// if condition => handler,` (the condition is optional, the comma after a
/// block handler too) and `else => handler`; and `futures::select!`'s, whose
/// `default => handler` and `complete => handler` are like `else`'s.
fn parse_select(input: syn::parse::ParseStream<'_>) -> syn::Result<Vec<Part>> {
    use syn::Token;
    let mut parts = Vec::new();
    if input.peek(syn::Ident) && input.peek2(Token![;]) {
        let biased: syn::Ident = input.parse()?;
        if biased != "biased" {
            return Err(syn::Error::new(biased.span(), "expected `biased`"));
        }
        let semi: Token![;] = input.parse()?;
        parts.push(Part::Tokens(quote!(#biased #semi)));
    }
    while !input.is_empty() {
        // `futures::select!`'s `default =>` and `complete =>`, like
        // `else =>`, have no pattern and no future.
        let keyword = input.peek(syn::Ident) && input.peek2(Token![=>]) && {
            let ident: syn::Ident = input.fork().parse()?;
            ident == "default" || ident == "complete"
        };
        let otherwise = keyword || input.peek(Token![else]);
        if keyword {
            parts.push(Part::Tokens(input.parse::<syn::Ident>()?.to_token_stream()));
        } else if otherwise {
            parts.push(Part::Tokens(
                input.parse::<Token![else]>()?.to_token_stream(),
            ));
        } else {
            parts.push(Part::Pattern(Pat::parse_multi_with_leading_vert(input)?));
            parts.push(Part::Tokens(input.parse::<Token![=]>()?.to_token_stream()));
            parts.push(Part::Expr(input.parse()?));
            if input.peek(Token![,]) {
                let comma: Token![,] = input.parse()?;
                let condition: Token![if] = input.parse()?;
                parts.push(Part::Tokens(quote!(#comma #condition)));
                parts.push(Part::Expr(input.parse()?));
            }
        }
        parts.push(Part::Tokens(input.parse::<Token![=>]>()?.to_token_stream()));
        let block = input.peek(syn::token::Brace);
        let handler = if block {
            Expr::Block(syn::ExprBlock {
                attrs: Vec::new(),
                label: None,
                block: input.parse()?,
            })
        } else {
            input.parse()?
        };
        // `else`'s, `default`'s and `complete`'s handlers see no pattern.
        parts.push(if otherwise {
            Part::Expr(handler)
        } else {
            Part::Arm(handler)
        });
        let comma: Option<Token![,]> = input.parse()?;
        if comma.is_none() && !block && !input.is_empty() {
            return Err(input.error("expected `,`"));
        }
        parts.push(Part::Tokens(comma.to_token_stream()));
    }
    Ok(parts)
}

/// Macros whose arguments are Rust expressions (among other tokens), so a
/// spawn call written in them runs as written: their tokens are searched.
/// Others (`quote!`, `stringify!`, a DSL) may give the same tokens another
/// meaning and are left alone.
const EXPRESSION_MACROS: [&str; 14] = [
    "vec",
    "join",
    "try_join",
    "select",
    "select_biased",
    "pin",
    "dbg",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "matches",
];

impl Rewriter {
    /// Visits a `dbg!` and, when spawns in it were rewritten, returns what
    /// it does, printing each argument as the user wrote it: `dbg!` itself
    /// prints the tokens it gets, the rewritten ones.
    //
    // Input: `dbg!(tokio::spawn(f()))`
    // Output: `match { …tracked spawn… } { v => { eprintln!("[{}:{}:{}] {} = {:#?}", file!(),
    //     line!(), column!(), stringify!(tokio::spawn(f())), &v); v } }`
    fn visit_dbg(&mut self, mac: &mut syn::Macro) -> Option<Expr> {
        let written = mac.tokens.clone();
        let sites = self.sites.len();
        self.visit_macro_mut(mac);
        if self.sites.len() == sites {
            return None;
        }
        let separated = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        let values = syn::parse::Parser::parse2(separated, mac.tokens.clone()).ok()?;
        let texts = syn::parse::Parser::parse2(separated, written).ok()?;
        // `line!()` and `column!()` at the `dbg`, as `dbg!` gives them.
        let span = mac.path.segments.first()?.ident.span();
        let printed = values.iter().zip(&texts).map(|(value, text)| {
            quote_spanned! {span=>
                match #value {
                    __tracked_value => {
                        ::std::eprintln!(
                            "[{}:{}:{}] {} = {:#?}",
                            ::core::file!(),
                            ::core::line!(),
                            ::core::column!(),
                            ::core::stringify!(#text),
                            &__tracked_value,
                        );
                        __tracked_value
                    }
                }
            }
        });
        let printed: Vec<TokenStream> = printed.collect();
        let printed = match printed.as_slice() {
            [one] => one.clone(),
            _ => quote_spanned!(span=> (#(#printed,)*)),
        };
        // A `dbg!` that never runs, for `clippy::dbg_macro` to see.
        let bang = mac.bang_token;
        let path = &mac.path;
        syn::parse2(quote_spanned! {span=>
            {
                let _ = || #path #bang ();
                #printed
            }
        })
        .ok()
    }

    /// A one-argument spawn call's argument, with its target call marked,
    /// and its site's name suffix (numbered when repeated) and target.
    fn spawned(&mut self, call: &ExprCall) -> (Expr, String, String) {
        let mut argument = call.args.first().cloned().expect("one argument");
        let (name, target) = spawned_name(&argument);
        if target.is_some() {
            mark_target_call(&mut argument);
        }
        let count = self.names.entry(name.clone()).or_insert(0);
        *count += 1;
        let suffix = if *count == 1 {
            name
        } else {
            format!("{name}#{count}")
        };
        (argument, suffix, target.unwrap_or_default())
    }

    /// Declares a spawn site that exists under `cfg` where the code around
    /// the call is there, and returns the tracked spawn `spawn` makes with
    /// it.
    fn site(
        &mut self,
        span: Span,
        cfg: Cfg,
        suffix: String,
        target: String,
        spawn: impl FnOnce(&syn::Ident) -> TokenStream,
    ) -> TokenStream {
        let ident = format_ident!("__TRACKED_SPAWN_{}", self.sites.len());
        let tokens = spawn(&ident);
        // No site for a spawn that a `#[cfg]` around it removes.
        let mut site_cfg = self.context.clone();
        site_cfg.extend(cfg);
        self.sites.push(SpawnSite {
            ident,
            suffix,
            target,
            span,
            cfg: site_cfg,
        });
        tokens
    }

    /// A call whose path means a tokio spawn function under some cfgs only
    /// (a `#[cfg]` on the `use`, item or `let` it resolves to), as one
    /// argument per meaning, each under its cfg, of `identity`: the tracked
    /// spawn where it is tokio's, the call as written where it is not.
    //
    // Input: `spawn(f(x))` after `#[cfg(not(test))] use tokio::spawn;`
    // Output: `::core::convert::identity(#[cfg(all(not(test)))] { …tracked spawn… },
    //     #[cfg(not(any(all(not(test)))))] spawn(f(x)))`
    fn rewrite_under_cfgs(&mut self, call: &ExprCall, meanings: &Meanings) -> Expr {
        let span = call.span();
        let (argument, suffix, target) = self.spawned(call);
        let mut arguments = Vec::new();
        let mut tokio = Vec::new();
        for (cfg, function) in meanings {
            let Some(function) = *function else {
                continue;
            };
            let spawn = self.site(span, cfg.clone(), suffix.clone(), target.clone(), |site| {
                spawn_call(function, site, &argument, span)
            });
            let attr = cfg_attr(cfg);
            arguments.push(quote!(#attr #spawn));
            tokio.push(quote!(all(#(#cfg),*)));
        }
        syn::parse_quote_spanned! {span=>
            ::core::convert::identity(
                #(#arguments,)*
                #[cfg(not(any(#(#tokio),*)))] #call
            )
        }
    }

    /// Visits an `if` or `while` condition or a match guard, whose `let`s
    /// bind in the rest of the chain and the body: into the innermost scope.
    fn visit_condition(&mut self, cond: &mut Expr) {
        match cond {
            Expr::Let(binding) => {
                self.visit_expr_mut(&mut binding.expr);
                self.scopes
                    .last_mut()
                    .expect("a scope")
                    .bind(&binding.pat, &Cfg::new());
            }
            Expr::Binary(both) if matches!(both.op, syn::BinOp::And(_)) => {
                self.visit_condition(&mut both.left);
                self.visit_condition(&mut both.right);
            }
            other => self.visit_expr_mut(other),
        }
    }

    /// Visits with `scope` innermost.
    fn within(&mut self, scope: Scope, visit: impl FnOnce(&mut Self)) {
        self.scopes.push(scope);
        visit(self);
        self.scopes.pop();
    }

    /// Rewrites the spawn calls in a macro's tokens: a path that resolves to
    /// a spawn function, not preceded by `.`, `::` or `fn`, followed by
    /// parentheses, is parsed as a call and rewritten as one in the body.
    /// Nested groups and macros are searched too; a group that parses as an
    /// expression is visited as one, with its `#[cfg]`s and bindings.
    fn rewrite_tokens(&mut self, tokens: TokenStream) -> TokenStream {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = TokenStream::new();
        let mut i = 0;
        while i < tokens.len() {
            if let Some(end) = self.spawn_call_at(&tokens, i) {
                let call: TokenStream = tokens[i..=end].iter().cloned().collect();
                if let Ok(mut expr @ Expr::Call(_)) = syn::parse2::<Expr>(call) {
                    self.visit_expr_mut(&mut expr);
                    expr.to_tokens(&mut out);
                    i = end + 1;
                    continue;
                }
            }
            // A nested macro's tokens, `stringify!(…)`, are searched only
            // if it is one of the expression macros too.
            let nested_macro = i >= 2
                && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '!')
                && matches!(&tokens[i - 2], TokenTree::Ident(name)
                    if !EXPRESSION_MACROS.contains(&name.to_string().as_str()));
            // A group that parses as an expression (a block, an array, a
            // tuple or a call's arguments) is visited as one, so the
            // `#[cfg]`s and bindings in it count as in the body.
            if let TokenTree::Group(group) = &tokens[i]
                && !nested_macro
                && group.delimiter() != Delimiter::None
                && let Ok(mut expr) = syn::parse2::<Expr>(TokenTree::Group(group.clone()).into())
            {
                self.visit_expr_mut(&mut expr);
                expr.to_tokens(&mut out);
                i += 1;
                continue;
            }
            match &tokens[i] {
                TokenTree::Group(group) if !nested_macro => {
                    let mut rewritten =
                        Group::new(group.delimiter(), self.rewrite_tokens(group.stream()));
                    rewritten.set_span(group.span());
                    out.extend([TokenTree::Group(rewritten)]);
                }
                token => out.extend([token.clone()]),
            }
            i += 1;
        }
        out
    }

    /// The index of the parenthesized arguments when `tokens[start..]` begins
    /// with a call to a spawn function.
    fn spawn_call_at(&self, tokens: &[TokenTree], start: usize) -> Option<usize> {
        let is_punct = |index: usize, ch: char| matches!(tokens.get(index), Some(TokenTree::Punct(p)) if p.as_char() == ch);
        let leading_colons = is_punct(start, ':') && is_punct(start + 1, ':');
        if let Some(previous) = start.checked_sub(1) {
            let after_fn = matches!(&tokens[previous], TokenTree::Ident(i) if i == "fn");
            // The tail of a longer path (`a::tokio::spawn`), seen from its
            // `::` or from the segment after it. A lone `:` is a field's
            // (`Task { handle: tokio::spawn(…) }`): a spawn follows it.
            let path_goes_on = is_punct(previous, ':')
                && previous.checked_sub(1).is_some_and(|p| is_punct(p, ':'));
            let path_before = leading_colons
                && (matches!(&tokens[previous], TokenTree::Ident(_)) || is_punct(previous, '>'));
            if is_punct(previous, '.') || path_goes_on || path_before || after_fn {
                return None;
            }
        }
        let mut index = start;
        if leading_colons {
            index += 2;
        }
        let mut segments = Vec::new();
        loop {
            let Some(TokenTree::Ident(ident)) = tokens.get(index) else {
                return None;
            };
            segments.push(name(ident));
            index += 1;
            if is_punct(index, ':') && is_punct(index + 1, ':') {
                index += 2;
            } else {
                break;
            }
        }
        let meanings = resolve(&self.scopes, leading_colons, &segments);
        if meanings.iter().all(|(_, function)| function.is_none()) {
            return None;
        }
        match tokens.get(index) {
            Some(TokenTree::Group(args)) if args.delimiter() == Delimiter::Parenthesis => {
                Some(index)
            }
            _ => None,
        }
    }

    fn spawn_fn(&self, call: &ExprCall) -> Meanings {
        let Expr::Path(path) = &*call.func else {
            return Meanings::new();
        };
        // Generic arguments on the function (`tokio::spawn::<_>`) are left
        // to inference in the tracked spawn; on a module, it is no path of
        // tokio's.
        let segments = &path.path.segments;
        let modules = segments.iter().take(segments.len().saturating_sub(1));
        if path.qself.is_some() || modules.into_iter().any(|s| !s.arguments.is_none()) {
            return Meanings::new();
        }
        let names: Vec<String> = segments.iter().map(|s| name(&s.ident)).collect();
        resolve(&self.scopes, path.path.leading_colon.is_some(), &names)
    }
}

// Input: `tokio::spawn(vote_processor(state.clone()))`
// Output: `{ let f = vote_processor(state.clone()); let pick = …; ::tracked::__private::spawn(&__TRACKED_SPAWN_0, pick, f) }`
fn spawn_call(function: SpawnFn, site: &syn::Ident, argument: &Expr, span: Span) -> TokenStream {
    let (probe, spawn) = match function {
        SpawnFn::Async => (quote!(probe), quote!(spawn)),
        SpawnFn::Blocking => (quote!(probe_fn), quote!(spawn_blocking)),
        SpawnFn::Local => (quote!(probe), quote!(spawn_local)),
    };
    let runtime = runtime(span);
    // The `use` comes first: an item after a statement is what
    // `clippy::items_after_statements` flags, at the user's spawn.
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #runtime::__private::{
                PickAny as _, PickDebugErr as _, PickErr as _, PickOutcome as _,
            };
            let __tracked_spawned = #argument;
            let __tracked_pick = (&&&&&#runtime::__private::#probe(&__tracked_spawned)).pick();
            #runtime::__private::#spawn(&#site, __tracked_pick, __tracked_spawned)
        }
    }
}

/// The name a spawned expression gives its site, and the fn or method it
/// calls (which may claim the task).
///
/// Wrappers that keep the future's output and poll it in their first poll
/// are looked through: `Box::pin(f(x))`, and `f(x).instrument(span)` and
/// the like (see [`TRANSPARENT_METHODS`]) name `f` and let it claim the task.
fn spawned_name(expr: &Expr) -> (String, Option<String>) {
    match expr {
        Expr::Call(call) if is_box_pin(&call.func) && call.args.len() == 1 => {
            spawned_name(&call.args[0])
        }
        Expr::MethodCall(call)
            if TRANSPARENT_METHODS.contains(&call.method.to_string().as_str()) =>
        {
            spawned_name(&call.receiver)
        }
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) => match path.path.segments.last() {
                Some(last) => {
                    let name = last.ident.unraw().to_string();
                    (name.clone(), Some(name))
                }
                None => ("task".to_owned(), None),
            },
            _ => ("task".to_owned(), None),
        },
        Expr::MethodCall(call) => {
            let name = call.method.unraw().to_string();
            (name.clone(), Some(name))
        }
        Expr::Path(path) => match path.path.get_ident() {
            Some(ident) => (ident.unraw().to_string(), None),
            None => ("task".to_owned(), None),
        },
        Expr::Paren(inner) => spawned_name(&inner.expr),
        Expr::Group(inner) => spawned_name(&inner.expr),
        Expr::Await(inner) => spawned_name(&inner.base),
        Expr::Async(block) => match only_expr(&block.block) {
            Some(inner @ Expr::Await(_)) => spawned_name(inner),
            _ => ("async_block".to_owned(), None),
        },
        Expr::Closure(closure) => match &*closure.body {
            Expr::Block(block) => match only_expr(&block.block) {
                Some(inner @ (Expr::Call(_) | Expr::MethodCall(_))) => {
                    (spawned_name(inner).0, None)
                }
                _ => ("closure".to_owned(), None),
            },
            inner @ (Expr::Call(_) | Expr::MethodCall(_)) => (spawned_name(inner).0, None),
            _ => ("closure".to_owned(), None),
        },
        _ => ("task".to_owned(), None),
    }
}

/// In a spawned async block, marks the call that `spawned_name` takes as
/// the target, so that the runtime knows an annotated fn made in it from
/// one made later in the task's first poll by a plain fn of the same name
/// (`worker.run()` awaiting an annotated `db.run()`). A call made before
/// the spawn (`spawn(f(x))`) needs no mark: the task is not running yet.
//
// Input: `async move { Box::pin(f(x)).await }`
// Output: `async move { Box::pin(__private::target_call(TargetCall::open(), f(x))).await }`
fn mark_target_call(expr: &mut Expr) {
    fn mark(expr: &mut Expr, in_block: bool) {
        match expr {
            Expr::Call(call) if is_box_pin(&call.func) && call.args.len() == 1 => {
                mark(&mut call.args[0], in_block);
            }
            Expr::MethodCall(call)
                if TRANSPARENT_METHODS.contains(&call.method.to_string().as_str()) =>
            {
                mark(&mut call.receiver, in_block);
            }
            Expr::Call(_) | Expr::MethodCall(_) if in_block => {
                let span = expr.span();
                let runtime = runtime(span);
                *expr = syn::parse_quote_spanned! {span=>
                    #runtime::__private::target_call(
                        #runtime::__private::TargetCall::open(),
                        #expr,
                    )
                };
            }
            Expr::Paren(inner) => mark(&mut inner.expr, in_block),
            Expr::Group(inner) => mark(&mut inner.expr, in_block),
            Expr::Await(inner) => mark(&mut inner.base, in_block),
            Expr::Async(block) => {
                if let [Stmt::Expr(inner @ Expr::Await(_), None)] = block.block.stmts.as_mut_slice()
                {
                    mark(inner, true);
                }
            }
            _ => {}
        }
    }
    mark(expr, false);
}

/// Methods that wrap a future in one with the same output, polling it from
/// the first poll on: `tracing::Instrument`'s and `WithSubscriber`'s, and
/// `futures::FutureExt::boxed`/`boxed_local`.
const TRANSPARENT_METHODS: [&str; 6] = [
    "instrument",
    "in_current_span",
    "with_subscriber",
    "with_current_subscriber",
    "boxed",
    "boxed_local",
];

/// Whether a macro called through `path` from inside `scopes` is std's
/// `dbg!`: `::std::dbg!`, `std::dbg!` where the body brings in no `std` of
/// its own, or `dbg!` where no `macro_rules! dbg`, `use … as dbg`, `use
/// some::dbg` or glob import (but tokio's) of the body may bring in another,
/// under any cfg. Whatever else `dbg!` may be, the user's macro is kept.
fn is_std_dbg(scopes: &[Scope], path: &syn::Path) -> bool {
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match names.as_slice() {
        [dbg] if path.leading_colon.is_none() && dbg == "dbg" => scopes.iter().all(|scope| {
            let mut imported = scope.macros.get("dbg").into_iter().flatten();
            imported.all(|(_, std)| *std) && scope.other_globs.is_empty()
        }),
        [std, dbg] if std == "std" && dbg == "dbg" => {
            path.leading_colon.is_some() || scopes.iter().all(|s| !s.modules.contains_key("std"))
        }
        _ => false,
    }
}

/// `Box::pin`, by any path ending in it.
fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else {
        return false;
    };
    let mut segments = path.path.segments.iter().rev();
    matches!(
        (segments.next(), segments.next()),
        (Some(pin), Some(boxed)) if pin.ident == "pin" && boxed.ident == "Box"
    )
}

/// The block's value when the block is a single expression.
fn only_expr(block: &Block) -> Option<&Expr> {
    match block.stmts.as_slice() {
        [syn::Stmt::Expr(expr, None)] => Some(expr),
        _ => None,
    }
}
