//! The scan of one file: walks the syntax tree with its scopes and reports
//! each call that spawns through tokio, and each `#[tracked]` site.

use crate::config;
use crate::diagnostic::{Region, Rule};
use crate::index::{name, path_segments, FileId, ItemKind, ModPath, Scope, TypeExpr};
use crate::lint::{self, Site};
use crate::resolve::{Env, Frame, Res, Resolver, Ty, LOCKS};
use crate::tokio_api::{self, SpawnFn, TokioItem, TokioType};
use proc_macro2::Span;
use std::cell::RefCell;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// The paths `#[tracked]` rewrites inside its fn whatever the imports, with
/// or without a leading `::`. It also rewrites calls through names that a
/// `use` inside the fn body brings in; see `Scanner::rewritten`.
const REWRITTEN: &[&str] = &[
    "tokio::spawn",
    "tokio::task::spawn",
    "tokio::task::spawn_blocking",
    "tokio::task::spawn_local",
];

/// A call that spawns through tokio, or (of its own rule) that blocks in
/// place through tokio.
#[derive(Debug)]
pub(crate) struct Spawn {
    /// [`Rule::UntrackedSpawn`] or [`Rule::UntrackedBlockInPlace`].
    pub(crate) rule: Rule,
    pub(crate) region: Region,
    /// The lines where the statements holding the call start (and where
    /// their first attributes are), up to the nearest spawn whose arguments
    /// hold the call: a marker above that spawn's statement covers it, not
    /// this one.
    pub(crate) statement_lines: Vec<usize>,
    pub(crate) api: String,
    pub(crate) help: String,
    pub(crate) fix: Option<Fix>,
}

/// Macros whose arguments `#[tracked]` searches for spawns to rewrite, by
/// the last segment of their path: the same list as `EXPRESSION_MACROS` in
/// `tracked-macros/src/spawn.rs` (a test keeps them equal). In any other
/// macro a spawn stays as written.
pub(crate) const EXPRESSION_MACROS: [&str; 14] = [
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

/// Iterator methods whose closures take an item first (not `fold`'s).
const ITEM_CLOSURES: [&str; 17] = [
    "for_each",
    "try_for_each",
    "map",
    "filter",
    "filter_map",
    "flat_map",
    "inspect",
    "any",
    "all",
    "find",
    "find_map",
    "position",
    "take_while",
    "skip_while",
    "map_while",
    "max_by_key",
    "min_by_key",
];

/// `Option` and `Result` methods whose closures take the value (not
/// `map_or_else`'s first, which takes a `Result`'s error).
const VALUE_CLOSURES: [&str; 7] = [
    "map",
    "and_then",
    "inspect",
    "filter",
    "is_some_and",
    "is_ok_and",
    "map_or",
];

/// Modules whose channel constructors give a `(sender, receiver)` pair,
/// by the segment before the constructor's name: tokio's and std's, and
/// the common crates' (whose receivers [`Ty::Receiver`] knows by name).
const CHANNEL_MODULES: [&str; 7] = [
    "mpsc",
    "oneshot",
    "broadcast",
    "watch",
    "crossbeam_channel",
    "flume",
    "async_channel",
];

/// Their constructors.
const CHANNEL_CONSTRUCTORS: [&str; 5] = [
    "channel",
    "unbounded_channel",
    "sync_channel",
    "bounded",
    "unbounded",
];

/// How `--fix` rewrites a direct call: replace the callee, then insert the
/// name and type after the opening parenthesis.
#[derive(Debug, Clone)]
pub(crate) struct Fix {
    /// What it fixes: an untracked spawn, or a tokio `block_in_place`
    /// (whose callee alone is replaced: `arguments` is empty).
    pub(crate) rule: Rule,
    pub(crate) callee: Region,
    pub(crate) open_paren: Region,
    pub(crate) replacement: String,
    pub(crate) arguments: String,
    /// Whether the spawn's `JoinHandle` is kept: not dropped by its
    /// statement or `let _ =`, nor awaited at once. Tracked's `JoinHandle`
    /// is not tokio's, so where the crate names tokio's type the handle may
    /// end up there, and the rewrite would not compile.
    pub(crate) keeps_handle: bool,
    /// Why `--fix` leaves this spawn as it is, when it does.
    pub(crate) blocked: Option<&'static str>,
}

/// What the scan needs besides the tree.
pub(crate) struct Context<'a> {
    pub(crate) resolver: Resolver<'a>,
    pub(crate) file: FileId,
    pub(crate) module: ModPath,
    pub(crate) crate_name: &'a str,
    /// The task type `--fix` writes, as a Rust expression.
    pub(crate) fix_type: &'a str,
    /// Maps positions of a doctest snippet back into the file.
    pub(crate) line_map: Option<&'a [(usize, usize)]>,
}

struct FnCtx {
    name: String,
    tracked: bool,
    /// The `type` of its `#[tracked]` attribute, as a Rust expression: the
    /// type `--fix` writes for spawns directly in it.
    ty: Option<String>,
    /// How many block scopes enclose the fn's own.
    frame_base: usize,
}

/// A path as written, and whether it starts with `::`.
type TraitPath = (bool, Vec<String>);

/// Walks one file.
pub(crate) struct Scanner<'a> {
    cx: Context<'a>,
    module: ModPath,
    frames: Vec<Frame>,
    self_tys: Vec<(Option<Ty>, Option<String>)>,
    /// The module-level trait whose body is being visited (innermost last;
    /// `None` for an impl inside it), where `Self::NAME` is its const.
    traits: Vec<Option<(ModPath, String)>>,
    /// The type parameters of the impls and fns being visited with the
    /// traits that bound them (`T: Svc`, `where T: Svc`), innermost last,
    /// each trait's path as written: `T::RT` is a bounding trait's const.
    bounds: Vec<(String, Vec<TraitPath>)>,
    fns: Vec<FnCtx>,
    /// The lines of the statements being visited, outermost first; see
    /// [`Spawn::statement_lines`].
    statement_lines: Vec<usize>,
    /// How many of `statement_lines` lie outside the arguments of the
    /// innermost spawn being visited.
    spawn_base: usize,
    /// Macro invocations being visited whose arguments `#[tracked]` does not
    /// search for spawns (all but [`EXPRESSION_MACROS`]).
    in_opaque_macro: usize,
    /// The call about to be visited whose `JoinHandle` its statement drops
    /// or awaits at once ([`Fix::keeps_handle`]).
    handle_dropped: Option<*const syn::ExprCall>,
    /// The `collect()` about to be visited, with the type its `let`
    /// annotation gives it.
    collect_into: Option<(*const syn::ExprMethodCall, TokioType)>,
    /// The variables bound inside an expression whose value `infer` is
    /// following (an arm's pattern, a block's `let`s), innermost last: they
    /// shadow the scopes' variables there.
    inner_vars: RefCell<Vec<(String, Option<Ty>)>>,
    pub(crate) in_macro_rules: usize,
    /// The fns each `macro_rules!` defined so far in the file writes out
    /// (`fn rt() -> Runtime` beside the `$($t)*` it is invoked with): in
    /// scope in that macro's invocations.
    pub(crate) macro_fns: std::collections::HashMap<String, std::rc::Rc<[syn::Item]>>,
    pub(crate) spawns: Vec<Spawn>,
    pub(crate) sites: Vec<Site>,
}

/// Methods that wrap a future in one with the same output: the same list
/// as `TRANSPARENT_METHODS` in `tracked-macros/src/spawn.rs`, which the
/// attribute looks through to find the spawned fn (a test keeps them equal).
const TRANSPARENT_METHODS: [&str; 6] = [
    "instrument",
    "in_current_span",
    "with_subscriber",
    "with_current_subscriber",
    "boxed",
    "boxed_local",
];

/// The fn a spawned future comes from: `serve` in `serve(conn)`,
/// `net::serve(conn)` or `self.serve()`, looking through `Box::pin(…)` and
/// the [`TRANSPARENT_METHODS`] as `#[tracked]` does; `None` for a block or
/// a closure.
fn callee(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Paren(p) => callee(&p.expr),
        syn::Expr::Call(call) => {
            let syn::Expr::Path(path) = &*call.func else {
                return None;
            };
            let segments = path_segments(&path.path);
            match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                [.., "Box", "pin"] => callee(call.args.first()?),
                [.., last] => Some(last.to_owned()),
                [] => None,
            }
        }
        syn::Expr::MethodCall(call) => match name(&call.method).as_str() {
            method if TRANSPARENT_METHODS.contains(&method) => callee(&call.receiver),
            method => Some(method.to_owned()),
        },
        _ => None,
    }
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(cx: Context<'a>) -> Self {
        let module = cx.module.clone();
        Scanner {
            cx,
            module,
            frames: Vec::new(),
            self_tys: Vec::new(),
            traits: Vec::new(),
            bounds: Vec::new(),
            fns: Vec::new(),
            statement_lines: Vec::new(),
            spawn_base: 0,
            in_opaque_macro: 0,
            handle_dropped: None,
            collect_into: None,
            inner_vars: RefCell::default(),
            in_macro_rules: 0,
            macro_fns: Default::default(),
            spawns: Vec::new(),
            sites: Vec::new(),
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            module: &self.module,
            file: self.cx.file,
            frames: &self.frames,
            self_ty: self.self_tys.last().and_then(|(ty, _)| ty.as_ref()),
        }
    }

    pub(crate) fn region(&self, first: Span, last: Span) -> Region {
        let mut region = Region::between(first, last);
        if let Some(map) = self.cx.line_map {
            let at = |line: usize, column: usize| match map.get(line.wrapping_sub(1)) {
                Some(&(file_line, offset)) => (file_line, column + offset),
                None => (line, column),
            };
            (region.line, region.column) = at(region.line, region.column);
            (region.end_line, region.end_column) = at(region.end_line, region.end_column);
        }
        region
    }

    /// Runs `f` inside a new block scope holding `items`.
    pub(crate) fn with_frame<'i>(
        &mut self,
        items: impl IntoIterator<Item = &'i syn::Item>,
        f: impl FnOnce(&mut Self),
    ) {
        let scope = Scope::of_items(self.cx.file, &self.module, items);
        self.frames.push(Frame {
            scope,
            vars: Default::default(),
        });
        f(self);
        self.frames.pop();
    }

    /// Visits statements as the body of a block.
    pub(crate) fn visit_stmts(&mut self, stmts: &[syn::Stmt]) {
        let items = stmts.iter().filter_map(|s| match s {
            syn::Stmt::Item(item) => Some(item),
            _ => None,
        });
        self.with_frame(items, |this| {
            // `thread_local!` and `lazy_static!` in a block are statements.
            for stmt in stmts {
                if let (syn::Stmt::Macro(m), Some(frame)) = (stmt, this.frames.last_mut()) {
                    frame.scope.add_statics(&m.mac);
                }
            }
            for stmt in stmts {
                this.visit_stmt(stmt);
            }
        });
    }

    /// Binds each name `pat` introduces in the innermost scope, where it
    /// shadows any outer variable of that name: with its type where `ty` (the
    /// type of the value matched) or the crate's struct definitions show it,
    /// else as unknown.
    pub(crate) fn bind(&mut self, pat: &syn::Pat, ty: Option<Ty>) {
        let mut bound = Vec::new();
        self.pattern_types(pat, ty, &mut bound);
        if let Some(frame) = self.frames.last_mut() {
            frame.vars.extend(bound);
        }
    }

    /// The names `pat` binds, each with its type where known, when it
    /// matches a value of type `ty`.
    fn pattern_types(&self, pat: &syn::Pat, ty: Option<Ty>, out: &mut Vec<(String, Option<Ty>)>) {
        match pat {
            syn::Pat::Ident(p) => {
                out.push((name(&p.ident), ty.clone()));
                if let Some((_, sub)) = &p.subpat {
                    self.pattern_types(sub, ty, out);
                }
            }
            // The callers type the value from the annotation.
            syn::Pat::Type(p) => self.pattern_types(&p.pat, ty, out),
            syn::Pat::Paren(p) => self.pattern_types(&p.pat, ty, out),
            syn::Pat::Reference(p) => self.pattern_types(&p.pat, ty, out),
            syn::Pat::Tuple(p) => {
                let elems = match ty {
                    Some(Ty::Tuple(elems)) => elems,
                    _ => Vec::new(),
                };
                for (pat, ty) in tuple_fields(&p.elems, elems) {
                    self.pattern_types(pat, ty, out);
                }
            }
            syn::Pat::TupleStruct(p) => {
                let fields = match wrapper_variant(p) {
                    // `Some(x)` of an `Option<T>`, `Ok(x)` of a `Result<T, _>`.
                    Some(true) => match ty {
                        // `Ok(guard)` of `lock()`, `Some(value)` of `get_mut()`.
                        Some(Ty::Wrapped(inner) | Ty::Locked(inner)) => vec![Some(*inner)],
                        _ => Vec::new(),
                    },
                    // `Err(e)`: the audit does not follow error types.
                    Some(false) => Vec::new(),
                    None => self
                        .struct_fields(p.qself.as_ref(), &p.path)
                        .map_or_else(Vec::new, |fields| {
                            fields.into_iter().map(|(_, ty)| ty).collect()
                        }),
                };
                for (pat, ty) in tuple_fields(&p.elems, fields) {
                    self.pattern_types(pat, ty, out);
                }
            }
            syn::Pat::Struct(p) => {
                let fields = self
                    .struct_fields(p.qself.as_ref(), &p.path)
                    .unwrap_or_default();
                for field in &p.fields {
                    let member = match &field.member {
                        syn::Member::Named(ident) => name(ident),
                        syn::Member::Unnamed(index) => index.index.to_string(),
                    };
                    let ty = fields
                        .iter()
                        .find(|(name, _)| *name == member)
                        .and_then(|(_, ty)| ty.clone());
                    self.pattern_types(&field.pat, ty, out);
                }
            }
            syn::Pat::Slice(p) => {
                let elem = match ty {
                    Some(Ty::Seq(elem)) => Some(*elem),
                    _ => None,
                };
                for pat in &p.elems {
                    match rest_binding(pat) {
                        Some(rest) => {
                            let seq = elem.clone().map(|e| Ty::Seq(Box::new(e)));
                            out.push((name(rest), seq));
                        }
                        None => self.pattern_types(pat, elem.clone(), out),
                    }
                }
            }
            // Each alternative binds the same names, with the same types:
            // take each name's type from the first alternative that shows it.
            syn::Pat::Or(p) => {
                let mut merged: Vec<(String, Option<Ty>)> = Vec::new();
                for case in &p.cases {
                    let mut names = Vec::new();
                    self.pattern_types(case, ty.clone(), &mut names);
                    for (name, ty) in names {
                        match merged.iter_mut().find(|(n, _)| *n == name) {
                            Some((_, known)) => {
                                if known.is_none() {
                                    *known = ty;
                                }
                            }
                            None => merged.push((name, ty)),
                        }
                    }
                }
                out.extend(merged);
            }
            _ => {
                let mut names = PatNames::default();
                names.visit_pat(pat);
                out.extend(names.0.into_iter().map(|name| (name, None)));
            }
        }
    }

    /// The fields of the struct a pattern or struct expression names, each
    /// with its type where known; `None` unless the path names one of the
    /// crate's structs.
    fn struct_fields(
        &self,
        qself: Option<&syn::QSelf>,
        path: &syn::Path,
    ) -> Option<Vec<(String, Option<Ty>)>> {
        let (module, name) = self.struct_named(qself, path)?;
        let names = self.cx.resolver.field_names(&module, &name)?;
        Some(
            names
                .into_iter()
                .map(|field| {
                    let ty = self.cx.resolver.field(&module, &name, &field);
                    (field, ty)
                })
                .collect(),
        )
    }

    /// The crate struct `path` names, if it names one.
    fn struct_named(
        &self,
        qself: Option<&syn::QSelf>,
        path: &syn::Path,
    ) -> Option<(ModPath, String)> {
        if qself.is_some() {
            return None;
        }
        let segments = path_segments(path);
        match self
            .cx
            .resolver
            .resolve(self.env(), path.leading_colon.is_some(), &segments)
        {
            (Res::Struct(module, name), used) if used == segments.len() => Some((module, name)),
            _ => None,
        }
    }

    /// The type of the items `for` takes from `expr`: a map's are (key,
    /// value) pairs.
    fn element_of(&self, expr: &syn::Expr) -> Option<Ty> {
        match self.infer(expr)? {
            Ty::Seq(elem) | Ty::Wrapped(elem) => Some(*elem),
            Ty::Map(value) => Some(Ty::Tuple(vec![None, Some(*value)])),
            // std's `Receiver` iterates over what it receives.
            Ty::Receiver(value) => Some(*value),
            _ => None,
        }
    }

    /// Visits a closure, its first parameter of type `first` unless its
    /// pattern names one.
    fn visit_closure(&mut self, c: &syn::ExprClosure, first: Option<Ty>) {
        self.with_frame([], |this| {
            for (i, input) in c.inputs.iter().enumerate() {
                match (i, input, &first) {
                    (0, pat, Some(ty)) if !matches!(pat, syn::Pat::Type(_)) => {
                        this.bind(input, Some(ty.clone()))
                    }
                    _ => this.bind_typed(input),
                }
            }
            this.visit_expr(&c.body);
        });
    }

    /// The type of what `call` passes its closure's first parameter: `rt`
    /// in a thread-local's `RT.with(|rt| ..)` (or a `RefCell` one's
    /// `with_borrow`, `with_borrow_mut`), an item in an iterator adaptor's
    /// (`sets.values_mut().for_each(|set| ..)`), the value in an `Option`'s
    /// or `Result`'s (`rx.recv().await.map(|h| ..)`).
    fn closure_param(&self, call: &syn::ExprMethodCall) -> Option<Ty> {
        let method = name(&call.method);
        match (self.infer(&call.receiver)?, method.as_str()) {
            (Ty::Lock(inner), "with") => Some(*inner),
            (Ty::Lock(inner), "with_borrow" | "with_borrow_mut") => match *inner {
                Ty::Lock(inner) => Some(*inner),
                _ => None,
            },
            (Ty::Seq(item), method) if ITEM_CLOSURES.contains(&method) => Some(*item),
            (Ty::Wrapped(value), method) if VALUE_CLOSURES.contains(&method) => Some(*value),
            _ => None,
        }
    }

    fn bind_typed(&mut self, pat: &syn::Pat) {
        let ty = match pat {
            syn::Pat::Type(p) => self
                .cx
                .resolver
                .type_of(self.env(), &TypeExpr::from_syn(&p.ty)),
            _ => None,
        };
        self.bind(pat, ty);
    }

    fn enter_fn(&mut self, attrs: &[syn::Attribute], sig: &syn::Signature, body: &syn::Block) {
        let tracked = attrs.iter().find(|a| lint::is_tracked(a));
        let mut ty = None;
        if let Some(attr) = tracked {
            let name = format!("{}::{}", self.module_path(), sig.ident);
            let region = self.region(sig.ident.span(), sig.ident.span());
            let site = Site::new(attr, region, name);
            ty = site.ty.as_ref().map(|(ty, _)| config::task_type_expr(ty));
            self.sites.push(site);
        }
        let impl_ty = self.self_tys.last().and_then(|(_, name)| name.clone());
        self.fns.push(FnCtx {
            name: match impl_ty {
                Some(ty) => format!("{ty}::{}", sig.ident),
                None => sig.ident.to_string(),
            },
            tracked: tracked.is_some(),
            ty,
            frame_base: self.frames.len(),
        });
        let outer_bounds = self.push_bounds(&sig.generics);
        self.with_frame([], |this| {
            if let Some(frame) = this.frames.last_mut() {
                for param in sig.generics.type_params() {
                    frame
                        .scope
                        .items
                        .insert(name(&param.ident), ItemKind::Other);
                }
            }
            for input in &sig.inputs {
                if let syn::FnArg::Typed(arg) = input {
                    let ty = this
                        .cx
                        .resolver
                        .type_of(this.env(), &TypeExpr::from_syn(&arg.ty));
                    this.bind(&arg.pat, ty);
                }
            }
            this.visit_block(body);
        });
        self.bounds.truncate(outer_bounds);
        self.fns.pop();
    }

    /// Pushes `generics`' type parameters with their trait bounds; returns
    /// how many were there before, to truncate to.
    fn push_bounds(&mut self, generics: &syn::Generics) -> usize {
        let before = self.bounds.len();
        let traits = |bounds: &Punctuated<syn::TypeParamBound, syn::Token![+]>| {
            let paths = bounds.iter().filter_map(|bound| match bound {
                syn::TypeParamBound::Trait(t) => {
                    Some((t.path.leading_colon.is_some(), path_segments(&t.path)))
                }
                _ => None,
            });
            paths.collect::<Vec<_>>()
        };
        for param in generics.type_params() {
            self.bounds
                .push((name(&param.ident), traits(&param.bounds)));
        }
        let predicates = generics.where_clause.iter().flat_map(|w| &w.predicates);
        for predicate in predicates {
            let syn::WherePredicate::Type(p) = predicate else {
                continue;
            };
            let syn::Type::Path(ty) = &p.bounded_ty else {
                continue;
            };
            let Some(param) = ty.path.get_ident().filter(|_| ty.qself.is_none()) else {
                continue;
            };
            let param = name(param);
            if let Some((_, paths)) = self.bounds[before..].iter_mut().find(|(n, _)| *n == param) {
                paths.extend(traits(&p.bounds));
            }
        }
        before
    }

    /// `T::NAME` for a type parameter `T` in scope: the const `NAME` of a
    /// trait that bounds it.
    fn bound_const(&self, param: &str, const_name: &str) -> Option<Ty> {
        let (_, traits) = self.bounds.iter().rev().find(|(n, _)| n == param)?;
        traits.iter().find_map(|(leading_colon, segments)| {
            let resolver = &self.cx.resolver;
            resolver.const_of_trait(self.env(), *leading_colon, segments, const_name)
        })
    }

    /// `my_crate::module::path`, as `module_path!()` would print it.
    fn module_path(&self) -> String {
        let mut path = self.cx.crate_name.to_owned();
        for segment in &self.module {
            path.push_str("::");
            path.push_str(segment);
        }
        path
    }

    /// The name `--fix` gives a task spawned with `spawned`: the fn it
    /// calls (`serve(conn)`, `self.run()`, `.await`ed or not) in this
    /// module, as `#[tracked]` on that fn would name it if it lives here;
    /// otherwise (an `async` block, a closure) the fn spawning it.
    fn task_name(&self, spawned: Option<&syn::Expr>) -> String {
        let callee = spawned.and_then(callee);
        match callee
            .as_deref()
            .or(self.fns.last().map(|f| f.name.as_str()))
        {
            Some(fn_name) => format!("{}::{fn_name}", self.module_path()),
            None => self.module_path(),
        }
    }

    fn resolve_value(&self, path: &syn::Path) -> Option<Vec<String>> {
        let segments = path_segments(path);
        if segments.len() == 1 && path.leading_colon.is_none() {
            let shadowed = self
                .frames
                .iter()
                .any(|f| f.vars.contains_key(&segments[0]));
            if shadowed {
                return None;
            }
        }
        match self
            .cx
            .resolver
            .resolve(self.env(), path.leading_colon.is_some(), &segments)
        {
            (Res::Tokio(tokio_path), used) if used == segments.len() => Some(tokio_path),
            _ => None,
        }
    }

    /// The type `collect()` builds, where its turbofish or the `let` it
    /// initialises names one of tokio's.
    fn collected_into(&self, call: &syn::ExprMethodCall) -> Option<TokioType> {
        let turbofish = call.turbofish.as_ref().and_then(|t| t.args.first());
        if let Some(syn::GenericArgument::Type(ty)) = turbofish {
            return match self
                .cx
                .resolver
                .type_of(self.env(), &TypeExpr::from_syn(ty))
            {
                Some(Ty::Tokio(ty)) => Some(ty),
                _ => None,
            };
        }
        let (annotated, ty) = self.collect_into?;
        std::ptr::eq(annotated, call).then_some(ty)
    }

    /// Whether `--fix` can rewrite the direct call `call` of `path`: written
    /// in the file itself (not in `macro_rules!` or a doc comment), without
    /// generic arguments, with arguments to insert before.
    fn fixable(&self, path: &syn::ExprPath, call: &syn::ExprCall) -> bool {
        let generic = path.path.segments.iter().any(|s| !s.arguments.is_empty());
        self.in_macro_rules == 0 && self.cx.line_map.is_none() && !generic && !call.args.is_empty()
    }

    /// Where `call`'s opening parenthesis is.
    fn open_paren(&self, call: &syn::ExprCall) -> Region {
        let open = call.paren_token.span.open();
        self.region(open, open)
    }

    fn check_call(&mut self, path: &syn::ExprPath, call: &syn::ExprCall) {
        if path.qself.is_some() {
            return;
        }
        let Some(tokio_path) = self.resolve_value(&path.path) else {
            return;
        };
        let region = self.region(path.path.span(), path.path.span());
        match tokio_api::item(&tokio_path) {
            Some(TokioItem::Fn(spawn)) => {
                if self.rewritten(&path.path) {
                    return;
                }
                let name = self.task_name(call.args.first());
                // In a `#[tracked(type = …)]` fn, its type; else `--type`'s.
                let ty = self.fns.last().and_then(|f| f.ty.as_deref());
                let ty = ty.unwrap_or(self.cx.fix_type);
                let arg = if spawn == SpawnFn::SpawnBlocking {
                    "closure"
                } else {
                    "future"
                };
                let help = format!("use `{}(\"{name}\", {ty}, {arg})`", spawn.tracked());
                let fix = self.fixable(path, call).then(|| Fix {
                    rule: Rule::UntrackedSpawn,
                    callee: region,
                    open_paren: self.open_paren(call),
                    // `::tracked`: a module named `tracked` in scope would
                    // take `tracked::` for itself.
                    replacement: format!("::{}", spawn.tracked()),
                    arguments: format!("{name:?}, ::{ty}, "),
                    keeps_handle: !self
                        .handle_dropped
                        .is_some_and(|dropped| std::ptr::eq(dropped, call)),
                    blocked: None,
                });
                self.push(region, tokio_api::display(&tokio_path), help, fix);
            }
            // Not rewritten by `#[tracked]`: flagged in annotated fns too.
            Some(TokioItem::BlockInPlace) => {
                let tracked = tokio_api::TRACKED_BLOCK_IN_PLACE;
                let help = format!(
                    "use `{tracked}(f)`: it blocks in place the same way and tells the watchdog the long poll is meant"
                );
                // Same signature (`F: FnOnce() -> R`, returning `R`): only
                // the callee changes.
                let fix = self.fixable(path, call).then(|| Fix {
                    rule: Rule::UntrackedBlockInPlace,
                    callee: region,
                    open_paren: self.open_paren(call),
                    replacement: format!("::{tracked}"),
                    arguments: String::new(),
                    keeps_handle: false,
                    blocked: None,
                });
                let api = tokio_api::display(&tokio_path);
                self.push_rule(Rule::UntrackedBlockInPlace, region, api, help, fix);
            }
            _ => {
                if let Some((method, ty_path)) = tokio_path.split_last() {
                    if let Some(TokioItem::Type(ty)) = tokio_api::item(ty_path) {
                        if ty.spawns(method) {
                            let api = format!("{}::{method}", ty.path());
                            self.push(region, api, ty.help().to_owned(), None);
                        }
                    }
                }
            }
        }
    }

    /// Runs `f`, which visits the arguments of a call; `spawns`: the call is
    /// a spawn just found, so a marker reaching the spawns in its arguments
    /// through a statement must be inside them (see [`Spawn::statement_lines`]).
    fn in_spawn_args(&mut self, spawns: bool, f: impl FnOnce(&mut Self)) {
        let base = self.spawn_base;
        if spawns {
            self.spawn_base = self.statement_lines.len();
        }
        f(self);
        self.spawn_base = base;
    }

    fn push(&mut self, region: Region, api: String, help: String, fix: Option<Fix>) {
        self.push_rule(Rule::UntrackedSpawn, region, api, help, fix);
    }

    fn push_rule(
        &mut self,
        rule: Rule,
        region: Region,
        api: String,
        help: String,
        fix: Option<Fix>,
    ) {
        self.spawns.push(Spawn {
            rule,
            region,
            statement_lines: self.statement_lines[self.spawn_base..].to_vec(),
            api,
            help,
            fix,
        });
    }

    /// Whether `#[tracked]` rewrites this call to a spawning fn: the
    /// enclosing fn is annotated, the call is in no macro invocation but
    /// [`EXPRESSION_MACROS`], and the path is a full tokio path or starts
    /// with a name imported from `tokio` by a `use` inside the fn body
    /// (explicit or glob).
    fn rewritten(&self, path: &syn::Path) -> bool {
        let Some(f) = self.fns.last().filter(|f| f.tracked) else {
            return false;
        };
        if self.in_opaque_macro > 0 {
            return false;
        }
        let segments = path_segments(path);
        if REWRITTEN.contains(&segments.join("::").as_str()) {
            return true;
        }
        // The attribute follows only `use` items that name tokio itself
        // (`use tokio::task;`, `use tokio as tk;`, `use tokio::*;`), not a
        // re-export (`use crate::rt::spawn;`).
        let tokio = |segments: &[String]| segments.first().is_some_and(|s| s == "tokio");
        let local_use = |name: &String| {
            self.frames[f.frame_base.min(self.frames.len())..]
                .iter()
                .any(|frame| {
                    frame
                        .scope
                        .uses
                        .get(name)
                        .is_some_and(|u| tokio(&u.segments))
                        || frame.scope.globs.iter().any(|g| tokio(&g.segments))
                })
        };
        path.leading_colon.is_none() && segments.first().is_some_and(local_use)
    }

    /// The type of an expression, when the evidence in the crate shows it.
    pub(crate) fn infer(&self, expr: &syn::Expr) -> Option<Ty> {
        match expr {
            syn::Expr::Path(p) if p.qself.is_none() => {
                if p.path.segments.len() == 1 && p.path.leading_colon.is_none() {
                    let name = name(&p.path.segments[0].ident);
                    if name == "self" {
                        return self.env().self_ty.cloned();
                    }
                    let inner = self.inner_vars.borrow();
                    if let Some((_, ty)) = inner.iter().rev().find(|(n, _)| *n == name) {
                        return ty.clone();
                    }
                    let var = self.frames.iter().rev().find_map(|f| f.vars.get(&name));
                    if let Some(ty) = var {
                        return ty.clone();
                    }
                }
                // Not a variable: a `static` or `const` item.
                let segments = path_segments(&p.path);
                let leading_colon = p.path.leading_colon.is_some();
                // `Self::RT` in a trait's body: the trait's const.
                if let ([this, name], None, Some(Some((module, tr)))) =
                    (&segments[..], self.env().self_ty, self.traits.last())
                {
                    if this == "Self" {
                        return self.cx.resolver.trait_const(module, tr, name);
                    }
                }
                // `T::RT` for a type parameter `T: Svc`.
                if let ([param, name], false) = (&segments[..], leading_colon) {
                    if let Some(ty) = self.bound_const(param, name) {
                        return Some(ty);
                    }
                }
                let resolver = &self.cx.resolver;
                if let Some(Res::Static { ty, module, file }) =
                    resolver.value(self.env(), leading_colon, &segments)
                {
                    return resolver.type_in(Some(&ty), &module, file);
                }
                match self
                    .cx
                    .resolver
                    .resolve(self.env(), leading_colon, &segments)
                {
                    (Res::Static { ty, module, file }, used) if used == segments.len() => {
                        self.cx.resolver.type_in(Some(&ty), &module, file)
                    }
                    // An associated const: `Self::RT`, `Svc::RT`.
                    (Res::Struct(module, ty), used) if used + 1 == segments.len() => {
                        self.cx.resolver.assoc_const(&module, &ty, &segments[used])
                    }
                    _ => None,
                }
            }
            syn::Expr::Path(p) => self.infer_qualified(p),
            syn::Expr::Reference(r) => self.infer(&r.expr),
            syn::Expr::Paren(p) => self.infer(&p.expr),
            syn::Expr::Group(g) => self.infer(&g.expr),
            syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => self.infer(&u.expr),
            syn::Expr::Try(t) => match self.infer(&t.expr)? {
                Ty::Wrapped(inner) | Ty::Locked(inner) => Some(*inner),
                _ => None,
            },
            // A lock's future (tokio's `lock()`, `get_or_init(..)`) gives its
            // guard; a call of an async fn is typed as what it returns.
            syn::Expr::Await(a) => self.awaited(self.infer(&a.base)?),
            syn::Expr::Tuple(t) => Ty::tuple(t.elems.iter().map(|e| self.infer(e)).collect()),
            // The elements of an array all have one type: the first that
            // names it.
            syn::Expr::Array(a) => {
                let elem = a.elems.iter().find_map(|e| self.infer(e))?;
                Some(Ty::Seq(Box::new(elem)))
            }
            syn::Expr::Repeat(r) => Some(Ty::Seq(Box::new(self.infer(&r.expr)?))),
            syn::Expr::Macro(m) if m.mac.path.is_ident("vec") => {
                let elems = m
                    .mac
                    .parse_body_with(Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated)
                    .map(|elems| elems.into_iter().collect::<Vec<_>>())
                    .or_else(|_| {
                        m.mac.parse_body_with(|input: syn::parse::ParseStream<'_>| {
                            let elem: syn::Expr = input.parse()?;
                            input.parse::<syn::Token![;]>()?;
                            input.parse::<syn::Expr>()?;
                            Ok(vec![elem])
                        })
                    })
                    .ok()?;
                let elem = elems.iter().find_map(|e| self.infer(e))?;
                Some(Ty::Seq(Box::new(elem)))
            }
            syn::Expr::Index(i) => match self.infer(&i.expr)?.unguarded() {
                Ty::Seq(elem) if matches!(*i.index, syn::Expr::Range(_)) => Some(Ty::Seq(elem)),
                Ty::Seq(elem) | Ty::Map(elem) => Some(*elem),
                _ => None,
            },
            syn::Expr::Struct(s) => {
                let (module, name) = self.struct_named(s.qself.as_ref(), &s.path)?;
                Some(Ty::Struct(module, name))
            }
            syn::Expr::Field(f) => match self.infer(&f.base)?.unguarded() {
                Ty::Tuple(mut elems) => match &f.member {
                    syn::Member::Unnamed(index) if (index.index as usize) < elems.len() => {
                        elems.swap_remove(index.index as usize)
                    }
                    _ => None,
                },
                Ty::Struct(module, ty) => {
                    let member = match &f.member {
                        syn::Member::Named(ident) => name(ident),
                        syn::Member::Unnamed(index) => index.index.to_string(),
                    };
                    self.cx.resolver.field(&module, &ty, &member)
                }
                _ => None,
            },
            syn::Expr::MethodCall(m) => {
                // A thread-local's `with` (`with_borrow`, `with_borrow_mut`)
                // returns what its closure does, the parameter typed as there.
                let with = matches!(
                    name(&m.method).as_str(),
                    "with" | "with_borrow" | "with_borrow_mut"
                );
                if let Some(param) = with.then(|| self.closure_param(m)).flatten() {
                    let Some(syn::Expr::Closure(c)) = m.args.first() else {
                        return None;
                    };
                    return self.closure_value(c, param);
                }
                // `rt.block_on(fut)` (a `LocalSet`'s `local.block_on(&rt,
                // fut)`) gives what the future does.
                if m.method == "block_on" && (1..=2).contains(&m.args.len()) {
                    return self.awaited(self.infer(m.args.last()?)?);
                }
                let receiver = self.infer(&m.receiver)?;
                self.method_returns(receiver, &name(&m.method))
            }
            syn::Expr::Call(c) => self.infer_call(c),
            // The value of a branch: the first that names a type (the arms
            // of a well-typed `match` all have one).
            syn::Expr::Block(b) => self.infer_tail(&b.block),
            // An async block is typed as what it gives, as an async fn's call.
            syn::Expr::Async(a) => self.infer_tail(&a.block),
            syn::Expr::Unsafe(u) => self.infer_tail(&u.block),
            syn::Expr::If(i) => {
                let mut bound = Vec::new();
                self.condition_bindings(&i.cond, &mut bound);
                self.infer_with(bound, |this| this.infer_tail(&i.then_branch))
                    .or_else(|| {
                        let (_, otherwise) = i.else_branch.as_ref()?;
                        self.infer(otherwise)
                    })
            }
            syn::Expr::Match(m) => {
                let scrutinee = self.infer(&m.expr);
                m.arms.iter().find_map(|arm| {
                    let mut bound = Vec::new();
                    self.pattern_types(&arm.pat, scrutinee.clone(), &mut bound);
                    self.infer_with(bound, |this| this.infer(&arm.body))
                })
            }
            _ => None,
        }
    }

    /// The type of a qualified path's associated const: `<W as Trait>::RT`
    /// is the trait's (of the type it declares), `<W>::RT` the type's.
    fn infer_qualified(&self, p: &syn::ExprPath) -> Option<Ty> {
        let qself = p.qself.as_ref()?;
        let segments = path_segments(&p.path);
        let (name, trait_path) = segments.split_last()?;
        let resolver = &self.cx.resolver;
        if qself.position == 0 {
            if !trait_path.is_empty() {
                return None;
            }
            return match resolver.type_of(self.env(), &TypeExpr::from_syn(&qself.ty))? {
                Ty::Struct(module, ty) => resolver.assoc_const(&module, &ty, name),
                _ => None,
            };
        }
        if qself.position != trait_path.len() {
            return None;
        }
        let leading_colon = p.path.leading_colon.is_some();
        resolver.const_of_trait(self.env(), leading_colon, trait_path, name)
    }

    /// What awaiting a value of type `ty` gives: a lock's future its guard,
    /// a (oneshot) receiver the `Result` of what it receives; a call of an
    /// async fn is typed as what it returns.
    pub(crate) fn awaited(&self, ty: Ty) -> Option<Ty> {
        match ty {
            Ty::Locked(inner) => Some(*inner),
            Ty::Receiver(value) => Some(Ty::Wrapped(value)),
            ty => Some(ty),
        }
    }

    /// The type of the value a closure returns when its first parameter
    /// has the type `first` (the others unknown, shadowing outer names).
    fn closure_value(&self, c: &syn::ExprClosure, first: Ty) -> Option<Ty> {
        let mut bound = Vec::new();
        for (i, input) in c.inputs.iter().enumerate() {
            let ty = (i == 0).then(|| first.clone());
            self.pattern_types(input, ty, &mut bound);
        }
        self.infer_with(bound, |this| this.infer(&c.body))
    }

    /// What calling `method` on a value of type `receiver` returns.
    fn method_returns(&self, receiver: Ty, method: &str) -> Option<Ty> {
        match (receiver, method) {
            // Locking gives a guard, or a `Result` or future of one.
            (
                Ty::Lock(inner),
                "lock" | "read" | "write" | "try_lock" | "try_read" | "try_write" | "blocking_lock"
                | "blocking_read" | "blocking_write" | "lock_owned" | "read_owned" | "write_owned"
                | "try_lock_owned" | "upgradable_read" | "borrow" | "borrow_mut" | "try_borrow"
                | "try_borrow_mut" | "get_or_init" | "get_or_try_init" | "wait" | "get_mut"
                | "into_inner",
            ) => Some(Ty::Locked(inner)),
            // A `OnceLock`'s or `OnceCell`'s value, if set.
            (Ty::Lock(inner), "get") => Some(Ty::Wrapped(inner)),
            (Ty::Locked(inner), "unwrap" | "expect" | "unwrap_or_else" | "unwrap_unchecked") => {
                Some(*inner)
            }
            // A `Result` of a guard as an `Option` of it.
            (Ty::Locked(inner), "ok") => Some(Ty::Locked(inner)),
            // Any other method is the guarded value's, through `Deref`.
            (Ty::Locked(inner), method) => self.method_returns(*inner, method),
            (Ty::Wrapped(inner), "unwrap" | "expect" | "unwrap_or_else" | "unwrap_unchecked") => {
                Some(*inner)
            }
            // `watch`'s current value, behind a guard.
            (Ty::Receiver(value), "borrow" | "borrow_and_update") => Some(Ty::Locked(value)),
            // `fuse()` of a future (or stream) keeps what it gives.
            (ty, "clone" | "as_ref" | "as_mut" | "borrow" | "deref" | "fuse") => Some(ty),
            (
                Ty::Seq(elem),
                "iter" | "iter_mut" | "into_iter" | "drain" | "rev" | "skip" | "take" | "cloned"
                | "copied" | "filter" | "skip_while" | "take_while" | "step_by" | "peekable"
                | "by_ref" | "inspect" | "as_slice" | "as_mut_slice",
            ) => Some(Ty::Seq(elem)),
            // The values of `Option`s or `Result`s, or of inner sequences.
            (Ty::Seq(elem), "flatten") => match *elem {
                Ty::Wrapped(inner) | Ty::Seq(inner) => Some(Ty::Seq(inner)),
                _ => None,
            },
            (Ty::Seq(elem), "enumerate") => {
                Some(Ty::Seq(Box::new(Ty::Tuple(vec![None, Some(*elem)]))))
            }
            (
                Ty::Seq(elem),
                "first" | "last" | "get" | "get_mut" | "first_mut" | "last_mut" | "pop"
                | "pop_front" | "pop_back" | "front" | "back" | "front_mut" | "back_mut" | "next"
                | "next_back",
            ) => Some(Ty::Wrapped(elem)),
            (Ty::Wrapped(inner), "iter" | "iter_mut" | "into_iter") => Some(Ty::Seq(inner)),
            (Ty::Wrapped(inner), "take" | "as_deref" | "as_deref_mut" | "cloned") => {
                Some(Ty::Wrapped(inner))
            }
            // A map's values, or (key, value) pairs.
            (Ty::Map(value), "values" | "values_mut" | "into_values") => Some(Ty::Seq(value)),
            (Ty::Map(value), "iter" | "iter_mut" | "into_iter" | "drain") => {
                Some(Ty::Seq(Box::new(Ty::Tuple(vec![None, Some(*value)]))))
            }
            (Ty::Map(value), "get" | "get_mut" | "remove") => Some(Ty::Wrapped(value)),
            (
                Ty::Map(value),
                "remove_entry" | "pop_first" | "pop_last" | "first_key_value" | "last_key_value",
            ) => Some(Ty::Wrapped(Box::new(Ty::Tuple(vec![None, Some(*value)])))),
            (Ty::Map(value), "entry") => Some(Ty::Entry(value)),
            (
                Ty::Entry(value),
                "or_default" | "or_insert" | "or_insert_with" | "or_insert_with_key",
            ) => Some(*value),
            (Ty::Entry(value), "and_modify") => Some(Ty::Entry(value)),
            // What a receiver receives: in an `Option` or a `Result` (or a
            // future of one), or one after the other.
            (
                Ty::Receiver(value),
                "recv" | "try_recv" | "blocking_recv" | "recv_timeout" | "recv_deadline"
                | "recv_async",
            ) => Some(Ty::Wrapped(value)),
            (Ty::Receiver(value), "iter" | "try_iter" | "into_iter") => Some(Ty::Seq(value)),
            (Ty::Tokio(ty), method) => Ty::from_table(ty.method_returns(method)),
            (Ty::Struct(module, ty), method) => self.cx.resolver.method(&module, &ty, method),
            _ => None,
        }
    }

    /// The type of a block's value, its last expression, where the block's
    /// `let`s shadow the variables outside it.
    fn infer_tail(&self, block: &syn::Block) -> Option<Ty> {
        let Some(syn::Stmt::Expr(tail, None)) = block.stmts.last() else {
            return None;
        };
        let base = self.inner_vars.borrow().len();
        for stmt in &block.stmts {
            if let syn::Stmt::Local(local) = stmt {
                let ty = match &local.pat {
                    syn::Pat::Type(p) => self
                        .cx
                        .resolver
                        .type_of(self.env(), &TypeExpr::from_syn(&p.ty)),
                    _ => local.init.as_ref().and_then(|init| self.infer(&init.expr)),
                };
                let mut bound = Vec::new();
                self.pattern_types(&local.pat, ty, &mut bound);
                self.inner_vars.borrow_mut().extend(bound);
            }
        }
        let ty = self.infer(tail);
        self.inner_vars.borrow_mut().truncate(base);
        ty
    }

    /// Infers with the variables `bound` in scope.
    fn infer_with(
        &self,
        bound: Vec<(String, Option<Ty>)>,
        f: impl FnOnce(&Self) -> Option<Ty>,
    ) -> Option<Ty> {
        let base = self.inner_vars.borrow().len();
        self.inner_vars.borrow_mut().extend(bound);
        let ty = f(self);
        self.inner_vars.borrow_mut().truncate(base);
        ty
    }

    /// The variables the `let`s of a condition bind (a chain of them joined
    /// by `&&`).
    fn condition_bindings(&self, cond: &syn::Expr, out: &mut Vec<(String, Option<Ty>)>) {
        match cond {
            syn::Expr::Let(l) => {
                let ty = self.infer_with(out.clone(), |this| this.infer(&l.expr));
                self.pattern_types(&l.pat, ty, out);
            }
            syn::Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
                self.condition_bindings(&b.left, out);
                self.condition_bindings(&b.right, out);
            }
            _ => {}
        }
    }

    /// A channel's `(sender, receiver)`, the receiver's values typed as the
    /// constructor's turbofish says (`mpsc::channel::<Handle>(8)`) or, for
    /// a `watch`, as its first value.
    fn channel(
        &self,
        path: &syn::ExprPath,
        watch: bool,
        first_arg: impl FnOnce() -> Option<Ty>,
    ) -> Option<Ty> {
        let turbofish = match &path.path.segments.last()?.arguments {
            syn::PathArguments::AngleBracketed(args) => {
                args.args.iter().find_map(|arg| match arg {
                    syn::GenericArgument::Type(ty) => Some(ty),
                    _ => None,
                })
            }
            _ => None,
        };
        let value = match turbofish {
            Some(ty) => self
                .cx
                .resolver
                .type_of(self.env(), &TypeExpr::from_syn(ty))?,
            None if watch => first_arg()?,
            None => return None,
        };
        Ty::tuple(vec![None, Some(Ty::Receiver(Box::new(value)))])
    }

    /// Whether `segments` name a channel constructor (see
    /// [`CHANNEL_MODULES`]), their first segment read as the path it is
    /// imported by (`channel` after `use tokio::sync::mpsc::channel;`,
    /// `m::channel` after `use std::sync::mpsc as m;`): `Some(true)` for
    /// a `watch`.
    fn channel_constructor(&self, path: &syn::Path, segments: &[String]) -> Option<bool> {
        let (first, rest) = segments.split_first()?;
        let imported = match path.leading_colon {
            None => self.cx.resolver.import_of(self.env(), first),
            Some(_) => None,
        };
        let mut full = imported.unwrap_or_else(|| vec![first.clone()]);
        full.extend_from_slice(rest);
        match full.as_slice() {
            [.., module, ctor]
                if CHANNEL_MODULES.contains(&module.as_str())
                    && CHANNEL_CONSTRUCTORS.contains(&ctor.as_str()) =>
            {
                Some(module == "watch")
            }
            _ => None,
        }
    }

    fn infer_call(&self, call: &syn::ExprCall) -> Option<Ty> {
        let syn::Expr::Path(path) = &*call.func else {
            return None;
        };
        if path.qself.is_some() {
            return None;
        }
        let segments = path_segments(&path.path);
        let names: Vec<&str> = segments.iter().map(String::as_str).collect();
        let first_arg = || call.args.first().and_then(|a| self.infer(a));
        match names.as_slice() {
            [.., "Arc" | "Rc" | "Box", "new" | "clone" | "from"] => return first_arg(),
            // `futures::executor::block_on(fut)` gives what the future does.
            [.., "block_on"] if call.args.len() == 1 => return self.awaited(first_arg()?),
            ["Some" | "Ok"] => return Some(Ty::Wrapped(Box::new(first_arg()?))),
            [.., "Vec" | "VecDeque", "from"] => {
                return Some(Ty::Seq(Box::new(self.element_of(call.args.first()?)?)))
            }
            _ => {}
        }
        if let Some(watch) = self.channel_constructor(&path.path, &segments) {
            return self.channel(path, watch, first_arg);
        }
        let (res, used) =
            self.cx
                .resolver
                .resolve(self.env(), path.path.leading_colon.is_some(), &segments);
        let lock_new = matches!(names.as_slice(), [.., lock, "new"] if LOCKS.contains(lock));
        match res {
            // `Mutex::new(value)`, not of the crate's own `Mutex`.
            Res::External | Res::Tokio(_) if lock_new => Some(Ty::Lock(Box::new(first_arg()?))),
            Res::Tokio(tokio_path) if used == segments.len() => {
                let (name, ty_path) = tokio_path.split_last()?;
                match tokio_api::item(ty_path)? {
                    TokioItem::Type(ty) => Ty::from_table(ty.assoc_returns(name)),
                    _ => None,
                }
            }
            Res::Fn { ret, module, file } if used == segments.len() => {
                self.cx.resolver.type_in(ret.as_ref(), &module, file)
            }
            Res::Struct(module, ty) if used + 1 == segments.len() => {
                self.cx.resolver.method(&module, &ty, &segments[used])
            }
            // `Set::new()`, with `type Set = JoinSet<()>;`.
            alias @ Res::Alias { .. } if used + 1 == segments.len() => {
                match self.cx.resolver.expand_alias(alias, Vec::new())? {
                    Ty::Tokio(ty) => Ty::from_table(ty.assoc_returns(&segments[used])),
                    Ty::Struct(module, ty) => {
                        self.cx.resolver.method(&module, &ty, &segments[used])
                    }
                    _ => None,
                }
            }
            // A tuple struct's constructor.
            Res::Struct(module, ty) if used == segments.len() => Some(Ty::Struct(module, ty)),
            _ => None,
        }
    }
}

/// The span of an expression's first token, found without walking all of
/// it (which `Spanned` would do).
/// The attributes of an expression: those written on an expression
/// statement are the outermost expression's.
fn expr_attrs(expr: &syn::Expr) -> &[syn::Attribute] {
    use syn::Expr as E;
    match expr {
        E::Array(e) => &e.attrs,
        E::Assign(e) => &e.attrs,
        E::Async(e) => &e.attrs,
        E::Await(e) => &e.attrs,
        E::Binary(e) => &e.attrs,
        E::Block(e) => &e.attrs,
        E::Break(e) => &e.attrs,
        E::Call(e) => &e.attrs,
        E::Cast(e) => &e.attrs,
        E::Closure(e) => &e.attrs,
        E::Const(e) => &e.attrs,
        E::Field(e) => &e.attrs,
        E::ForLoop(e) => &e.attrs,
        E::If(e) => &e.attrs,
        E::Index(e) => &e.attrs,
        E::Loop(e) => &e.attrs,
        E::Macro(e) => &e.attrs,
        E::Match(e) => &e.attrs,
        E::MethodCall(e) => &e.attrs,
        E::Paren(e) => &e.attrs,
        E::Path(e) => &e.attrs,
        E::Reference(e) => &e.attrs,
        E::Return(e) => &e.attrs,
        E::Struct(e) => &e.attrs,
        E::Try(e) => &e.attrs,
        E::Tuple(e) => &e.attrs,
        E::Unary(e) => &e.attrs,
        E::Unsafe(e) => &e.attrs,
        E::While(e) => &e.attrs,
        _ => &[],
    }
}

fn first_span(expr: &syn::Expr) -> Option<Span> {
    use syn::Expr as E;
    Some(match expr {
        E::Call(e) => return first_span(&e.func),
        E::MethodCall(e) => return first_span(&e.receiver),
        E::Field(e) => return first_span(&e.base),
        E::Binary(e) => return first_span(&e.left),
        E::Assign(e) => return first_span(&e.left),
        E::Index(e) => return first_span(&e.expr),
        E::Try(e) => return first_span(&e.expr),
        E::Await(e) => return first_span(&e.base),
        E::Cast(e) => return first_span(&e.expr),
        E::Path(e) => e.path.segments.first()?.ident.span(),
        E::Macro(e) => e.mac.path.segments.first()?.ident.span(),
        E::Block(e) => e.block.brace_token.span.open(),
        E::Unsafe(e) => e.unsafe_token.span,
        E::Async(e) => e.async_token.span,
        E::If(e) => e.if_token.span,
        E::Match(e) => e.match_token.span,
        E::While(e) => e.while_token.span,
        E::ForLoop(e) => e.for_token.span,
        E::Loop(e) => e.loop_token.span,
        E::Return(e) => e.return_token.span,
        E::Paren(e) => e.paren_token.span.open(),
        E::Tuple(e) => e.paren_token.span.open(),
        E::Array(e) => e.bracket_token.span.open(),
        E::Reference(e) => e.and_token.span,
        E::Unary(e) => e.op.span(),
        E::Lit(e) => e.lit.span(),
        E::Closure(e) => e.or1_token.span,
        E::Struct(e) => e.path.segments.first()?.ident.span(),
        _ => return None,
    })
}

/// Collects the identifiers a pattern binds.
/// Pairs a tuple pattern's elements with the tuple's element types (none
/// where unknown or where the pattern does not fit the tuple), around a `..`
/// that stands for any number of elements.
fn tuple_fields(
    pats: &syn::punctuated::Punctuated<syn::Pat, syn::Token![,]>,
    tys: Vec<Option<Ty>>,
) -> Vec<(&syn::Pat, Option<Ty>)> {
    let rest = pats.iter().position(|p| matches!(p, syn::Pat::Rest(_)));
    let fits = match rest {
        Some(_) => tys.len() + 1 >= pats.len(),
        None => tys.len() == pats.len(),
    };
    pats.iter()
        .enumerate()
        .filter(|(_, pat)| !matches!(pat, syn::Pat::Rest(_)))
        .map(|(i, pat)| {
            let ty = fits.then(|| {
                // Past the `..`, elements count from the end.
                let at = match rest {
                    Some(r) if i > r => tys.len() + i - pats.len(),
                    _ => i,
                };
                tys.get(at).cloned().flatten()
            });
            (pat, ty.flatten())
        })
        .collect()
}

/// Whether a tuple-struct pattern is `Some(..)` or `Ok(..)` (`Some(true)`),
/// or `Err(..)` (`Some(false)`), as the prelude names them or written out
/// from `std` or `core`.
fn wrapper_variant(p: &syn::PatTupleStruct) -> Option<bool> {
    if p.qself.is_some() {
        return None;
    }
    let segments = path_segments(&p.path);
    let (last, prefix) = segments.split_last()?;
    let std_path = prefix.iter().all(|s| {
        matches!(
            s.as_str(),
            "std" | "core" | "option" | "result" | "Option" | "Result"
        )
    });
    match last.as_str() {
        "Some" | "Ok" if std_path => Some(true),
        "Err" if std_path => Some(false),
        _ => None,
    }
}

/// The name `rest @ ..` binds to the rest of a slice.
fn rest_binding(pat: &syn::Pat) -> Option<&syn::Ident> {
    match pat {
        syn::Pat::Ident(p) => match p.subpat.as_ref()? {
            (_, sub) if matches!(**sub, syn::Pat::Rest(_)) => Some(&p.ident),
            _ => None,
        },
        _ => None,
    }
}

#[derive(Default)]
struct PatNames(Vec<String>);

impl Visit<'_> for PatNames {
    fn visit_pat_ident(&mut self, p: &syn::PatIdent) {
        self.0.push(name(&p.ident));
        visit::visit_pat_ident(self, p);
    }
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_item_macro(&mut self, m: &'ast syn::ItemMacro) {
        if let (Some(ident), true) = (&m.ident, m.mac.path.is_ident("macro_rules")) {
            let fns = crate::macros::transcribed_fns(m.mac.tokens.clone());
            if !fns.is_empty() {
                self.macro_fns.insert(name(ident), fns.into());
            }
        }
        visit::visit_item_macro(self, m);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let Some((_, items)) = &m.content else {
            return;
        };
        let frames = std::mem::take(&mut self.frames);
        let self_tys = std::mem::take(&mut self.self_tys);
        let traits = std::mem::take(&mut self.traits);
        self.module.push(name(&m.ident));
        for item in items {
            self.visit_item(item);
        }
        self.module.pop();
        self.frames = frames;
        self.self_tys = self_tys;
        self.traits = traits;
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.enter_fn(&f.attrs, &f.sig, &f.block);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.enter_fn(&f.attrs, &f.sig, &f.block);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(body) = &f.default {
            self.enter_fn(&f.attrs, &f.sig, body);
        }
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let written = TypeExpr::from_syn(&i.self_ty);
        let ty = self.cx.resolver.type_of(self.env(), &written);
        let name = match &written {
            TypeExpr::Path { segments, .. } => segments.last().cloned(),
            _ => None,
        };
        self.self_tys.push((ty, name));
        self.traits.push(None);
        let outer_bounds = self.push_bounds(&i.generics);
        for item in &i.items {
            self.visit_impl_item(item);
        }
        self.bounds.truncate(outer_bounds);
        self.traits.pop();
        self.self_tys.pop();
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        self.self_tys.push((None, Some(t.ident.to_string())));
        // A trait in a block is not one the index knows.
        let module_level = self.frames.is_empty();
        self.traits
            .push(module_level.then(|| (self.module.clone(), name(&t.ident))));
        visit::visit_item_trait(self, t);
        self.traits.pop();
        self.self_tys.pop();
    }

    /// A marker may stand above a statement's first line, or above its
    /// first attribute: both lines are the statement's while it is visited.
    fn visit_stmt(&mut self, stmt: &'ast syn::Stmt) {
        let (attrs, first) = match stmt {
            syn::Stmt::Local(local) => (&local.attrs[..], Some(local.let_token.span)),
            syn::Stmt::Expr(expr, _) => (expr_attrs(expr), first_span(expr)),
            syn::Stmt::Macro(mac) => (
                &mac.attrs[..],
                mac.mac.path.segments.first().map(|s| s.ident.span()),
            ),
            syn::Stmt::Item(_) => (&[][..], None),
        };
        let attr = attrs
            .iter()
            .find(|a| matches!(a.style, syn::AttrStyle::Outer));
        let lines: Vec<usize> = [attr.map(|a| a.pound_token.span), first]
            .into_iter()
            .flatten()
            .map(|span| self.region(span, span).line)
            .collect();
        let depth = self.statement_lines.len();
        self.statement_lines.extend(lines);
        if let syn::Stmt::Expr(syn::Expr::Call(call), Some(_)) = stmt {
            self.handle_dropped = Some(call);
        }
        visit::visit_stmt(self, stmt);
        self.statement_lines.truncate(depth);
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.visit_stmts(&b.stmts);
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        let mut ty = None;
        if let Some(init) = &local.init {
            if let (syn::Pat::Wild(_), syn::Expr::Call(call)) = (&local.pat, &*init.expr) {
                self.handle_dropped = Some(call);
            }
            if let (syn::Pat::Type(p), syn::Expr::MethodCall(call)) = (&local.pat, &*init.expr) {
                let ty = TypeExpr::from_syn(&p.ty);
                if let Some(Ty::Tokio(ty)) = self.cx.resolver.type_of(self.env(), &ty) {
                    self.collect_into = Some((call, ty));
                }
            }
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
            ty = self.infer(&init.expr);
        }
        if let syn::Pat::Type(p) = &local.pat {
            ty = self
                .cx
                .resolver
                .type_of(self.env(), &TypeExpr::from_syn(&p.ty));
        }
        self.bind(&local.pat, ty);
    }

    // Each construct below binds a pattern in a scope of its own, holding
    // what the bindings are visible in: they shadow outer variables there,
    // and only there.

    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        self.visit_expr(&f.expr);
        let ty = self.element_of(&f.expr);
        self.with_frame([], |this| {
            this.bind(&f.pat, ty);
            this.visit_block(&f.body);
        });
    }

    fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
        self.visit_expr(&m.expr);
        let ty = self.infer(&m.expr);
        for arm in &m.arms {
            self.with_frame([], |this| {
                this.bind(&arm.pat, ty.clone());
                if let Some((_, guard)) = &arm.guard {
                    this.visit_expr(guard);
                }
                this.visit_expr(&arm.body);
            });
        }
    }

    /// The `let`s of the condition (a chain of them joined by `&&`) bind in
    /// the condition and the then-branch, not in the else-branch.
    fn visit_expr_if(&mut self, i: &'ast syn::ExprIf) {
        self.with_frame([], |this| {
            this.visit_expr(&i.cond);
            this.visit_block(&i.then_branch);
        });
        if let Some((_, otherwise)) = &i.else_branch {
            self.visit_expr(otherwise);
        }
    }

    fn visit_expr_while(&mut self, w: &'ast syn::ExprWhile) {
        self.with_frame([], |this| {
            this.visit_expr(&w.cond);
            this.visit_block(&w.body);
        });
    }

    /// A `let` in a condition or a match guard binds in the scope its
    /// `if`, `while` or arm opened.
    fn visit_expr_let(&mut self, l: &'ast syn::ExprLet) {
        self.visit_expr(&l.expr);
        let ty = self.infer(&l.expr);
        self.bind(&l.pat, ty);
    }

    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        self.visit_closure(c, None);
    }

    fn visit_expr_await(&mut self, e: &'ast syn::ExprAwait) {
        if let syn::Expr::Call(call) = &*e.base {
            self.handle_dropped = Some(call);
        }
        visit::visit_expr_await(self, e);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        match &*call.func {
            syn::Expr::Path(path) => {
                let found = self.spawns.len();
                self.check_call(path, call);
                let spawns = self.spawns.len() > found;
                self.in_spawn_args(spawns, |this| {
                    for arg in &call.args {
                        this.visit_expr(arg);
                    }
                });
            }
            _ => visit::visit_expr_call(self, call),
        }
    }

    fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
        if path.qself.is_some() {
            return;
        }
        let Some(tokio_path) = self.resolve_value(&path.path) else {
            return;
        };
        let region = self.region(path.path.span(), path.path.span());
        match tokio_api::item(&tokio_path) {
            Some(TokioItem::Fn(spawn)) => {
                let help = format!("pass a closure that calls `{}` instead", spawn.tracked());
                self.push(region, tokio_api::display(&tokio_path), help, None);
            }
            Some(TokioItem::BlockInPlace) => {
                let help = format!("pass `{}` instead", tokio_api::TRACKED_BLOCK_IN_PLACE);
                let api = tokio_api::display(&tokio_path);
                self.push_rule(Rule::UntrackedBlockInPlace, region, api, help, None);
            }
            _ => {}
        }
    }

    /// A spawning method of a receiver of known type, or `collect()` into a
    /// type whose `from_iter` spawns, named by its turbofish or its `let`.
    /// A thread-local's `with` closure gets its value's type.
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if let Some(ty) = self.closure_param(call) {
            self.visit_expr(&call.receiver);
            for arg in &call.args {
                match arg {
                    syn::Expr::Closure(c) => self.visit_closure(c, Some(ty.clone())),
                    arg => self.visit_expr(arg),
                }
            }
            return;
        }
        let mut method = name(&call.method);
        let ty = if method == "collect" {
            method = "from_iter".to_owned();
            self.collected_into(call)
        } else if method.starts_with("spawn") || method == "extend" {
            match self.infer(&call.receiver).map(Ty::unguarded) {
                Some(Ty::Tokio(ty)) => Some(ty),
                _ => None,
            }
        } else {
            None
        };
        if let Some(ty) = ty.filter(|ty| ty.spawns(&method)) {
            let region = self.region(call.method.span(), call.method.span());
            let api = format!("{}::{method}", ty.path());
            self.push(region, api, ty.help().to_owned(), None);
            self.visit_expr(&call.receiver);
            self.in_spawn_args(true, |this| {
                for arg in &call.args {
                    this.visit_expr(arg);
                }
            });
            return;
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string());
        match name.as_deref() {
            Some("macro_rules") if mac.path.segments.len() == 1 => {
                self.visit_macro_rules(mac.tokens.clone());
            }
            // Its tokens become a string; nothing in them runs.
            Some("stringify") => {}
            // Their patterns bind names in the branch's handler or the guard.
            Some("select" | "select_biased") if self.visit_select(mac.tokens.clone()) => {}
            Some("matches") if self.visit_matches(mac.tokens.clone()) => {}
            Some(name) if EXPRESSION_MACROS.contains(&name) => {
                self.visit_tokens(mac.tokens.clone());
            }
            _ => {
                let defined = match mac.path.segments.len() {
                    1 => self.macro_fns.get(name.as_deref().unwrap_or("")).cloned(),
                    _ => None,
                };
                self.in_opaque_macro += 1;
                self.with_frame(defined.iter().flat_map(|fns| fns.iter()), |this| {
                    this.visit_tokens(mac.tokens.clone())
                });
                self.in_opaque_macro -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EXPRESSION_MACROS;

    /// The names in the attribute's list `constant`.
    fn attribute_list(constant: &str) -> Vec<&'static str> {
        let source = include_str!("../../tracked-macros/src/spawn.rs");
        let start = source.find(constant).expect("the attribute's list");
        let list = &source[start..];
        let list = &list[list.find('=').expect("a value")..list.find("];").expect("an end")];
        list.split('"').skip(1).step_by(2).collect()
    }

    /// The audit calls a spawn in a `#[tracked]` fn tracked when the
    /// attribute rewrites it: both must search the same macros.
    #[test]
    fn the_expression_macros_are_the_attributes() {
        assert_eq!(attribute_list("const EXPRESSION_MACROS"), EXPRESSION_MACROS);
    }

    /// `--fix` names a spawn as the attribute names what it spawns: both
    /// look through the same wrappers.
    #[test]
    fn the_transparent_methods_are_the_attributes() {
        assert_eq!(
            attribute_list("const TRANSPARENT_METHODS"),
            super::TRANSPARENT_METHODS
        );
    }
}
