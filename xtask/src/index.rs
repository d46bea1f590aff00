//! The crate index: what each module of a crate defines and imports, the
//! fields of its structs and the return types of its fns, as plain data.
//!
//! syn's trees cannot leave the thread that parsed them, so each file is
//! summarised into an index fragment in parallel, the fragments of a crate are
//! merged, and the scan then resolves names against the merged index.

use crate::resolve::{Memo, Ty};
use crate::tokio_api::{Root, CRATES};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A module's path from its crate root: `["net", "peer"]`. The package's
/// library, in a crate that reaches it by name, is mounted under
/// [`lib_root`]: `["::mypkg", "net"]`.
pub(crate) type ModPath = Vec<String>;

/// Where the library `name` is mounted in a crate that reaches it by name.
/// No identifier starts with `::`, so no module path of the crate's own does.
pub(crate) fn lib_root(name: &str) -> ModPath {
    vec![format!("::{name}")]
}

/// The root of the crate `module` is in: `[]`, or the mounted library's.
pub(crate) fn crate_root(module: &ModPath) -> ModPath {
    match module.first() {
        Some(first) if first.starts_with("::") => vec![first.clone()],
        _ => Vec::new(),
    }
}

/// Index of a file within the audit.
pub(crate) type FileId = usize;

/// The ids of the libraries' files in the index crates that link them share
/// ([`CrateIndex::linking`]), this bit set: no file of such a crate has one.
pub(crate) const LIBRARY_FILE: FileId = 1 << (FileId::BITS - 1);

/// A type as written, reduced to what inference needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TypeExpr {
    Path {
        leading_colon: bool,
        segments: Vec<String>,
        args: Vec<TypeExpr>,
    },
    /// `(A, B, …)`, at least one element.
    Tuple(Vec<TypeExpr>),
    /// `[T; N]` or `[T]`.
    Seq(Box<TypeExpr>),
    /// A type already resolved: a type alias's argument, substituted for its
    /// parameter (see `Resolver::type_of`).
    Known(Box<Ty>),
    Unknown,
}

impl TypeExpr {
    /// Strips references, pointers and parentheses; keeps the path and the
    /// type arguments of its last segment, or a tuple's elements.
    pub(crate) fn from_syn(ty: &syn::Type) -> TypeExpr {
        match ty {
            syn::Type::Reference(r) => TypeExpr::from_syn(&r.elem),
            syn::Type::Ptr(p) => TypeExpr::from_syn(&p.elem),
            syn::Type::Paren(p) => TypeExpr::from_syn(&p.elem),
            syn::Type::Group(g) => TypeExpr::from_syn(&g.elem),
            syn::Type::Path(p) if p.qself.is_none() => {
                let args = match p.path.segments.last().map(|s| &s.arguments) {
                    Some(syn::PathArguments::AngleBracketed(a)) => a
                        .args
                        .iter()
                        .filter_map(|arg| match arg {
                            syn::GenericArgument::Type(t) => Some(TypeExpr::from_syn(t)),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                TypeExpr::Path {
                    leading_colon: p.path.leading_colon.is_some(),
                    segments: path_segments(&p.path),
                    args,
                }
            }
            syn::Type::Array(a) => TypeExpr::Seq(Box::new(TypeExpr::from_syn(&a.elem))),
            syn::Type::Slice(s) => TypeExpr::Seq(Box::new(TypeExpr::from_syn(&s.elem))),
            syn::Type::Tuple(t) if !t.elems.is_empty() => {
                TypeExpr::Tuple(t.elems.iter().map(TypeExpr::from_syn).collect())
            }
            _ => TypeExpr::Unknown,
        }
    }

    /// The type a fn returns, if it names one.
    pub(crate) fn from_return(output: &syn::ReturnType) -> Option<TypeExpr> {
        match output {
            syn::ReturnType::Type(_, ty) => Some(TypeExpr::from_syn(ty)),
            syn::ReturnType::Default => None,
        }
    }
}

/// The identifiers of a path, without generic arguments.
pub(crate) fn path_segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| name(&s.ident)).collect()
}

/// The name an identifier stands for: `r#spawn` is `spawn`.
pub(crate) fn name(ident: &syn::Ident) -> String {
    syn::ext::IdentExt::unraw(ident).to_string()
}

/// A path in a `use` item, or the crate named by `extern crate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UsePath {
    pub(crate) leading_colon: bool,
    pub(crate) segments: Vec<String>,
}

/// What a name defined in a scope is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ItemKind {
    Module,
    Struct,
    Fn(Option<TypeExpr>),
    /// A `static` or `const` item (or a `static ref` of `lazy_static!`), of
    /// this type.
    Static(TypeExpr),
    /// A type alias: its generic type parameters and the type it stands for.
    Alias(Vec<String>, TypeExpr),
    /// A trait: its associated consts are found through it.
    Trait,
    /// Anything else (enum, trait, macro, generic parameter): it shadows, and
    /// the audit follows it no further.
    Other,
}

/// The names one module body (or one block) defines and imports.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub(crate) file: FileId,
    pub(crate) module: ModPath,
    pub(crate) items: HashMap<String, ItemKind>,
    /// A `static`, `const` or fn that shares its name with a module or type
    /// of `items` (`struct RT {}` and `static RT: …`): it lives in the value
    /// namespace, they in the type namespace.
    pub(crate) values: HashMap<String, ItemKind>,
    pub(crate) uses: HashMap<String, UsePath>,
    pub(crate) globs: Vec<UsePath>,
}

impl Scope {
    /// Collects the items and imports among `items`, which live in `module`.
    pub(crate) fn of_items<'a>(
        file: FileId,
        module: &ModPath,
        items: impl IntoIterator<Item = &'a syn::Item>,
    ) -> Scope {
        let mut scope = Scope {
            file,
            module: module.clone(),
            ..Scope::default()
        };
        for item in items {
            scope.add_item(item);
        }
        scope
    }

    fn add_item(&mut self, item: &syn::Item) {
        let (name, kind) = match item {
            syn::Item::Use(u) => {
                let prefix = UsePath {
                    leading_colon: u.leading_colon.is_some(),
                    segments: Vec::new(),
                };
                self.add_use_tree(&u.tree, prefix);
                return;
            }
            syn::Item::ExternCrate(e) => {
                let name = match &e.rename {
                    Some((_, rename)) => name(rename),
                    None => name(&e.ident),
                };
                if name == "_" {
                    return;
                }
                let path = UsePath {
                    leading_colon: true,
                    segments: vec![self::name(&e.ident)],
                };
                self.uses.insert(name, path);
                return;
            }
            syn::Item::Mod(m) => (&m.ident, ItemKind::Module),
            syn::Item::Struct(s) => (&s.ident, ItemKind::Struct),
            syn::Item::Fn(f) => (
                &f.sig.ident,
                ItemKind::Fn(TypeExpr::from_return(&f.sig.output)),
            ),
            syn::Item::Enum(e) => (&e.ident, ItemKind::Other),
            syn::Item::Union(u) => (&u.ident, ItemKind::Other),
            syn::Item::Trait(t) => (&t.ident, ItemKind::Trait),
            syn::Item::TraitAlias(t) => (&t.ident, ItemKind::Other),
            syn::Item::Type(t) => {
                let params = t.generics.type_params().map(|p| name(&p.ident));
                let kind = ItemKind::Alias(params.collect(), TypeExpr::from_syn(&t.ty));
                (&t.ident, kind)
            }
            syn::Item::Const(c) => (&c.ident, ItemKind::Static(TypeExpr::from_syn(&c.ty))),
            syn::Item::Static(s) => (&s.ident, ItemKind::Static(TypeExpr::from_syn(&s.ty))),
            syn::Item::Macro(m) => match &m.ident {
                Some(ident) => (ident, ItemKind::Other),
                None => {
                    self.add_statics(&m.mac);
                    return;
                }
            },
            _ => return,
        };
        self.define(self::name(name), kind);
    }

    /// Adds the statics a `lazy_static!` or `thread_local!` invocation
    /// defines (see [`macro_statics`]).
    pub(crate) fn add_statics(&mut self, mac: &syn::Macro) {
        for (ident, ty) in macro_statics(mac) {
            self.define(name(&ident), ItemKind::Static(ty));
        }
    }

    /// Adds the item `name`; a value and a module or type of one name both
    /// stay (see `values`).
    fn define(&mut self, name: String, kind: ItemKind) {
        let value = |kind: &ItemKind| matches!(kind, ItemKind::Fn(_) | ItemKind::Static(_));
        let ty = |kind: &ItemKind| {
            matches!(
                kind,
                ItemKind::Module | ItemKind::Struct | ItemKind::Alias(..) | ItemKind::Trait
            )
        };
        match self.items.get(&name) {
            Some(old) if value(&kind) && ty(old) => {
                self.values.insert(name, kind);
            }
            Some(old) if ty(&kind) && value(old) => {
                if let Some(old) = self.items.insert(name.clone(), kind) {
                    self.values.insert(name, old);
                }
            }
            _ => {
                self.items.insert(name, kind);
            }
        }
    }

    fn add_use_tree(&mut self, tree: &syn::UseTree, mut prefix: UsePath) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.segments.push(name(&p.ident));
                self.add_use_tree(&p.tree, prefix);
            }
            syn::UseTree::Name(n) => {
                let name = name(&n.ident);
                if name == "self" {
                    if let Some(last) = prefix.segments.last() {
                        let last = last.clone();
                        self.uses.insert(last, prefix);
                    }
                } else {
                    prefix.segments.push(name.clone());
                    self.uses.insert(name, prefix);
                }
            }
            syn::UseTree::Rename(r) => {
                let rename = name(&r.rename);
                if rename == "_" {
                    return;
                }
                if r.ident != "self" {
                    prefix.segments.push(name(&r.ident));
                }
                self.uses.insert(rename, prefix);
            }
            syn::UseTree::Glob(_) => self.globs.push(prefix),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.add_use_tree(tree, prefix.clone());
                }
            }
        }
    }
}

/// The statics a `lazy_static!` invocation (`static ref NAME: T = init;`,
/// of type `T`) or a `thread_local!` one (`static NAME: T = init;`, of type
/// `LocalKey<T>`) defines; none if it is another macro, or does not parse as
/// one.
fn macro_statics(mac: &syn::Macro) -> Vec<(syn::Ident, TypeExpr)> {
    let thread_local = match mac.path.segments.last() {
        Some(s) if s.ident == "lazy_static" => false,
        Some(s) if s.ident == "thread_local" => true,
        _ => return Vec::new(),
    };
    let items = |input: syn::parse::ParseStream<'_>| {
        let mut out = Vec::new();
        while !input.is_empty() {
            input.call(syn::Attribute::parse_outer)?;
            input.parse::<syn::Visibility>()?;
            input.parse::<syn::Token![static]>()?;
            if !thread_local {
                input.parse::<syn::Token![ref]>()?;
            }
            let ident = input.parse()?;
            input.parse::<syn::Token![:]>()?;
            let ty = TypeExpr::from_syn(&input.parse()?);
            input.parse::<syn::Token![=]>()?;
            input.parse::<syn::Expr>()?;
            // `thread_local!` may leave out the last `;`.
            if !(thread_local && input.is_empty()) {
                input.parse::<syn::Token![;]>()?;
            }
            let ty = match thread_local {
                true => TypeExpr::Path {
                    leading_colon: true,
                    segments: ["std", "thread", "LocalKey"].map(String::from).to_vec(),
                    args: vec![ty],
                },
                false => ty,
            };
            out.push((ident, ty));
        }
        Ok(out)
    };
    mac.parse_body_with(items).unwrap_or_default()
}

/// A fn (or an associated const) inside an `impl` block.
#[derive(Clone, Debug)]
pub(crate) struct ImplFn {
    pub(crate) file: FileId,
    pub(crate) module: ModPath,
    pub(crate) self_ty: TypeExpr,
    /// What the fn returns, or the const's type.
    pub(crate) ret: Option<TypeExpr>,
    /// `self_ty` resolved where the impl is, filled in by the first lookup
    /// that needs it (the answer depends on the index alone).
    pub(crate) resolved_self: OnceLock<Option<Ty>>,
    /// `ret` resolved with `resolved_self` as `Self`, when that is known.
    pub(crate) resolved_ret: OnceLock<Option<Ty>>,
}

/// A struct's named (or numbered) fields and their types.
#[derive(Clone, Debug)]
pub(crate) struct StructDef {
    pub(crate) file: FileId,
    pub(crate) fields: Vec<(String, TypeExpr)>,
    /// Each field's type resolved, filled in by the first lookup of it.
    pub(crate) resolved: Vec<OnceLock<Option<Ty>>>,
}

/// One module: the scopes that make it up, and the names they define or
/// import explicitly.
///
/// A module has several scopes when an inline `mod` and a file both define
/// it, or two files claim its path (`src/foo.rs` and `src/foo/mod.rs`).
#[derive(Debug, Default)]
pub(crate) struct Module {
    pub(crate) scopes: Vec<Scope>,
    /// Each name some scope defines or imports explicitly, with the
    /// positions of those scopes in `scopes`, in order.
    pub(crate) explicit: HashMap<String, Vec<usize>>,
    /// Whether the scopes come from more than one file: then the file a
    /// lookup starts from decides which scopes rank first.
    pub(crate) several_files: bool,
    /// Whether some scope has a glob import.
    pub(crate) has_globs: bool,
    /// The answers of lookups in this module, shared by every file of the
    /// crate (see `resolve::Resolver`).
    pub(crate) memo: Memo,
}

impl Module {
    fn add(&mut self, scope: Scope) {
        let position = self.scopes.len();
        for name in scope.items.keys().chain(scope.uses.keys()) {
            let scopes = self.explicit.entry(name.clone()).or_default();
            if scopes.last() != Some(&position) {
                scopes.push(position);
            }
        }
        self.several_files |= self.scopes.iter().any(|s| s.file != scope.file);
        self.has_globs |= !scope.globs.is_empty();
        self.scopes.push(scope);
    }

    /// Whether a lookup from `file` ranks some scopes before others: `file`
    /// has scopes here, and not all of them.
    pub(crate) fn ranks_by(&self, file: FileId) -> bool {
        self.several_files && self.scopes.iter().any(|s| s.file == file)
    }

    /// The position of the scope that defines or imports `name` explicitly
    /// for a lookup from `file`: the first of `file`'s own if it ranks
    /// them, else the first.
    pub(crate) fn explicit_scope(&self, name: &str, file: FileId) -> Option<usize> {
        let scopes = self.explicit.get(name)?;
        let ranked = self.ranks_by(file);
        let own = scopes
            .iter()
            .find(|&&s| ranked && self.scopes[s].file == file);
        Some(*own.unwrap_or(&scopes[0]))
    }

    /// The positions of the scopes as a lookup from `file` ranks them: the
    /// file's own first, then the others, each in order.
    pub(crate) fn ranked(&self, file: FileId) -> impl Iterator<Item = usize> + Clone + '_ {
        let own = self.ranks_by(file);
        let first = (0..self.scopes.len()).filter(move |&i| own && self.scopes[i].file == file);
        let rest = (0..self.scopes.len()).filter(move |&i| !own || self.scopes[i].file != file);
        first.chain(rest)
    }
}

/// Everything the scan of one crate may look up.
#[derive(Debug, Default)]
pub(crate) struct CrateIndex {
    /// Names under which tokio and tokio-util are reachable from every
    /// module.
    pub(crate) roots: Vec<Root>,
    /// The crate name of the package's library, mounted under [`lib_root`].
    pub(crate) lib: Option<String>,
    /// The other members' libraries this crate depends on: the name it
    /// reaches each by, and the library's crate name.
    pub(crate) externs: HashMap<String, String>,
    /// The indexes of the libraries this crate reaches, directly or through
    /// another library (the package's, then the other members'), each with
    /// its modules under [`lib_root`]: built once and shared by every crate
    /// that reaches the library, which looks a module under `::name` up there
    /// (see [`CrateIndex::layer`]).
    libraries: Vec<Arc<CrateIndex>>,
    modules: HashMap<ModPath, Module>,
    structs: HashMap<(ModPath, String), StructDef>,
    /// Keyed by the last identifier of the impl's self type and the fn name.
    impl_fns: HashMap<(String, String), Vec<ImplFn>>,
    /// The associated consts of impls, keyed likewise.
    impl_consts: HashMap<(String, String), Vec<ImplFn>>,
    /// The associated consts that traits declare, keyed by the trait's and
    /// the const's names (the trait's module in [`ImplFn::module`], the
    /// const's type in `ret`).
    trait_consts: HashMap<(String, String), Vec<ImplFn>>,
    /// The trait impls, keyed by the last identifier of the self type (the
    /// trait's path, as written, in `ret`).
    trait_impls: HashMap<String, Vec<ImplFn>>,
    /// Whether some import renames a spawning function (`use tokio::spawn as
    /// go;`) or `block_in_place`, so that files without the word "spawn"
    /// (or "block_in_place") may still spawn (or block in place).
    pub(crate) renames_spawn: bool,
}

/// A `mod name;` declaration: its file is found where rustc would look
/// (see `workspace::mod_files`).
#[derive(Clone, Debug)]
pub(crate) struct ModDecl {
    /// The module it declares.
    pub(crate) module: ModPath,
    /// Its `#[path = "..."]`, if any.
    pub(crate) path: Option<String>,
    /// The inline modules it sits in, outermost first: each one's name and
    /// `#[path]`, if any.
    pub(crate) inline: Vec<(String, Option<String>)>,
}

impl ModDecl {
    /// Whether a `#[path]` moves its file from where the file's location
    /// places it.
    pub(crate) fn has_path(&self) -> bool {
        self.path.is_some() || self.inline.iter().any(|(_, path)| path.is_some())
    }
}

/// The value of a `#[path = "..."]` attribute among `attrs`.
fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// The index fragment of one file.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fragment {
    scopes: Vec<Scope>,
    structs: Vec<((ModPath, String), StructDef)>,
    impl_fns: Vec<((String, String), ImplFn)>,
    impl_consts: Vec<((String, String), ImplFn)>,
    trait_consts: Vec<((String, String), ImplFn)>,
    trait_impls: Vec<(String, ImplFn)>,
    /// The file's `mod name;` declarations.
    pub(crate) mods: Vec<ModDecl>,
}

impl Fragment {
    /// Summarises `file`, whose top level is the module `module`.
    pub(crate) fn of_file(file: &syn::File, id: FileId, module: &ModPath) -> Fragment {
        let mut fragment = Fragment::default();
        fragment.add_items(&file.items, id, module, &mut Vec::new());
        fragment
    }

    /// The fragment as the file `id` mounted at `to` would give, where it
    /// was summarised as mounted at `from`.
    pub(crate) fn relocated(&self, id: FileId, from: &ModPath, to: &ModPath) -> Fragment {
        let moved = |module: &ModPath| -> ModPath {
            let inner = module.get(from.len()..).unwrap_or_default();
            [to.as_slice(), inner].concat()
        };
        let mut out = self.clone();
        for scope in &mut out.scopes {
            scope.file = id;
            scope.module = moved(&scope.module);
        }
        for ((module, _), def) in &mut out.structs {
            *module = moved(module);
            def.file = id;
        }
        let defs = out.impl_fns.iter_mut().chain(&mut out.impl_consts);
        let defs = defs.chain(&mut out.trait_consts).map(|(_, def)| def);
        for def in defs.chain(out.trait_impls.iter_mut().map(|(_, def)| def)) {
            def.module = moved(&def.module);
            def.file = id;
        }
        for decl in &mut out.mods {
            decl.module = moved(&decl.module);
        }
        out
    }

    /// Adds `items`, of the module `module`, inside the `inline` modules of
    /// the file.
    fn add_items(
        &mut self,
        items: &[syn::Item],
        id: FileId,
        module: &ModPath,
        inline: &mut Vec<(String, Option<String>)>,
    ) {
        self.scopes.push(Scope::of_items(id, module, items));
        for item in items {
            match item {
                syn::Item::Mod(m) => {
                    let mut path = module.clone();
                    path.push(name(&m.ident));
                    match &m.content {
                        Some((_, inner)) => {
                            inline.push((name(&m.ident), path_attr(&m.attrs)));
                            self.add_items(inner, id, &path, inline);
                            inline.pop();
                        }
                        None => self.mods.push(ModDecl {
                            module: path,
                            path: path_attr(&m.attrs),
                            inline: inline.clone(),
                        }),
                    }
                }
                syn::Item::Struct(s) => {
                    let fields: Vec<(String, TypeExpr)> = s
                        .fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            let name = f.ident.as_ref().map_or_else(|| i.to_string(), name);
                            (name, TypeExpr::from_syn(&f.ty))
                        })
                        .collect();
                    let def = StructDef {
                        file: id,
                        resolved: fields.iter().map(|_| OnceLock::new()).collect(),
                        fields,
                    };
                    self.structs.push(((module.clone(), name(&s.ident)), def));
                }
                syn::Item::Trait(t) => {
                    for item in &t.items {
                        let syn::TraitItem::Const(c) = item else {
                            continue;
                        };
                        let def = ImplFn {
                            file: id,
                            module: module.clone(),
                            self_ty: TypeExpr::Unknown,
                            ret: Some(TypeExpr::from_syn(&c.ty)),
                            resolved_self: OnceLock::new(),
                            resolved_ret: OnceLock::new(),
                        };
                        self.trait_consts
                            .push(((name(&t.ident), name(&c.ident)), def));
                    }
                }
                syn::Item::Impl(imp) => {
                    let self_ty = TypeExpr::from_syn(&imp.self_ty);
                    let TypeExpr::Path { segments, .. } = &self_ty else {
                        continue;
                    };
                    let Some(type_name) = segments.last() else {
                        continue;
                    };
                    if let Some((_, trait_path, _)) = &imp.trait_ {
                        let def = ImplFn {
                            file: id,
                            module: module.clone(),
                            self_ty: self_ty.clone(),
                            ret: Some(TypeExpr::Path {
                                leading_colon: trait_path.leading_colon.is_some(),
                                segments: path_segments(trait_path),
                                args: Vec::new(),
                            }),
                            resolved_self: OnceLock::new(),
                            resolved_ret: OnceLock::new(),
                        };
                        self.trait_impls.push((type_name.clone(), def));
                    }
                    for item in &imp.items {
                        let (ident, ret, to) = match item {
                            syn::ImplItem::Fn(f) => (
                                &f.sig.ident,
                                TypeExpr::from_return(&f.sig.output),
                                &mut self.impl_fns,
                            ),
                            syn::ImplItem::Const(c) => (
                                &c.ident,
                                Some(TypeExpr::from_syn(&c.ty)),
                                &mut self.impl_consts,
                            ),
                            _ => continue,
                        };
                        let def = ImplFn {
                            file: id,
                            module: module.clone(),
                            self_ty: self_ty.clone(),
                            ret,
                            resolved_self: OnceLock::new(),
                            resolved_ret: OnceLock::new(),
                        };
                        to.push(((type_name.clone(), name(ident)), def));
                    }
                }
                _ => {}
            }
        }
    }
}

impl CrateIndex {
    /// Merges the fragments of one crate's files.
    pub(crate) fn new(
        roots: Vec<Root>,
        lib: Option<String>,
        fragments: Vec<Fragment>,
    ) -> CrateIndex {
        let mut index = CrateIndex {
            roots,
            lib,
            ..CrateIndex::default()
        };
        for fragment in fragments {
            for scope in fragment.scopes {
                for (name, path) in &scope.uses {
                    let target = path.segments.last().map_or("", String::as_str);
                    let renamed = |word: &str| target.starts_with(word) && !name.contains(word);
                    if renamed("spawn") || renamed("block_in_place") {
                        index.renames_spawn = true;
                    }
                    // `use ::tokio as tk;` at a crate root (the library's too).
                    let krate = CRATES.iter().find(|c| **c == target);
                    if let Some(krate) = krate.filter(|_| {
                        path.leading_colon
                            && path.segments.len() == 1
                            && crate_root(&scope.module) == scope.module
                    }) {
                        let root = (name.clone(), *krate);
                        if !index.roots.contains(&root) {
                            index.roots.push(root);
                        }
                    }
                }
                index
                    .modules
                    .entry(scope.module.clone())
                    .or_default()
                    .add(scope);
            }
            for (key, def) in fragment.structs {
                index.structs.entry(key).or_insert(def);
            }
            for (key, def) in fragment.impl_fns {
                index.impl_fns.entry(key).or_default().push(def);
            }
            for (key, def) in fragment.impl_consts {
                index.impl_consts.entry(key).or_default().push(def);
            }
            for (key, def) in fragment.trait_consts {
                index.trait_consts.entry(key).or_default().push(def);
            }
            for (key, def) in fragment.trait_impls {
                index.trait_impls.entry(key).or_default().push(def);
            }
        }
        index
    }

    /// This crate's index reaching the library by name through `library`:
    /// the library's roots (a `use ::tokio as tk;` at its root) and its
    /// renamed spawning fns count here too.
    pub(crate) fn linking(mut self, library: Arc<CrateIndex>) -> CrateIndex {
        for root in &library.roots {
            if !self.roots.contains(root) {
                self.roots.push(root.clone());
            }
        }
        self.link(&library);
        self
    }

    /// Makes this crate reach another member's library by `name`, and the
    /// libraries that one reaches, so that its re-exports can be followed.
    pub(crate) fn depending(&mut self, name: &str, library: &Arc<CrateIndex>) {
        if let Some(lib) = &library.lib {
            self.externs.insert(name.to_owned(), lib.clone());
            self.link(library);
        }
    }

    fn link(&mut self, library: &Arc<CrateIndex>) {
        for lib in std::iter::once(library).chain(&library.libraries) {
            if !self.libraries.iter().any(|l| l.lib == lib.lib) {
                self.libraries.push(Arc::clone(lib));
            }
        }
        self.renames_spawn |= library.renames_spawn;
    }

    /// The index that holds `module`: for a module under [`lib_root`], that
    /// library's, else this one. Lookups that start in a library stay in it
    /// and the libraries it reaches, so their answers do not depend on the
    /// crate asking.
    pub(crate) fn layer(&self, module: &ModPath) -> &CrateIndex {
        let Some(name) = module.first().and_then(|m| m.strip_prefix("::")) else {
            return self;
        };
        let library = self
            .libraries
            .iter()
            .find(|l| l.lib.as_deref() == Some(name));
        library.map_or(self, |l| l)
    }

    /// The module at `path`, with the path as the index holds it.
    pub(crate) fn module(&self, path: &ModPath) -> Option<(&ModPath, &Module)> {
        self.layer(path).modules.get_key_value(path)
    }

    /// The struct `name` of `module`.
    pub(crate) fn struct_def(&self, module: &ModPath, name: &str) -> Option<&StructDef> {
        let key = (module.clone(), name.to_owned());
        self.layer(module).structs.get(&key)
    }

    /// The fns (or with `consts`, the associated consts) `name` of the impls
    /// of types whose path ends in `ty`: this crate's, then the libraries'.
    pub(crate) fn impl_items(
        &self,
        consts: bool,
        ty: &str,
        name: &str,
    ) -> impl Iterator<Item = &ImplFn> {
        let key = (ty.to_owned(), name.to_owned());
        let own = self.impl_map(consts).get(&key);
        let libraries = self.libraries.iter();
        let libraries = libraries.filter_map(move |l| l.impl_map(consts).get(&key));
        own.into_iter().chain(libraries).flatten()
    }

    /// The consts `name` that traits named `tr` declare: this crate's, then
    /// the libraries'.
    pub(crate) fn trait_consts(&self, tr: &str, name: &str) -> impl Iterator<Item = &ImplFn> {
        let key = (tr.to_owned(), name.to_owned());
        let own = self.trait_consts.get(&key);
        let libraries = self.libraries.iter();
        let libraries = libraries.filter_map(move |l| l.trait_consts.get(&key));
        own.into_iter().chain(libraries).flatten()
    }

    /// The trait impls of types whose path ends in `ty`: this crate's, then
    /// the libraries'.
    pub(crate) fn trait_impls(&self, ty: &str) -> impl Iterator<Item = &ImplFn> {
        let ty = ty.to_owned();
        let own = self.trait_impls.get(&ty);
        let libraries = self.libraries.iter();
        let libraries = libraries.filter_map(move |l| l.trait_impls.get(&ty));
        own.into_iter().chain(libraries).flatten()
    }

    fn impl_map(&self, consts: bool) -> &HashMap<(String, String), Vec<ImplFn>> {
        match consts {
            true => &self.impl_consts,
            false => &self.impl_fns,
        }
    }
}
