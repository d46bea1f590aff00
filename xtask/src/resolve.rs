//! Name resolution and type inference over the crate index, without a
//! compiler: enough to tell tokio's items from look-alikes and to follow a
//! receiver to a tokio type through `let`s, parameters, fields and the return
//! types of the crate's own fns.

use crate::index::{
    crate_root, lib_root, CrateIndex, FileId, ItemKind, ModPath, Module, Scope, TypeExpr, UsePath,
};
use crate::tokio_api::{self, TokioItem, TokioType};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The names of the locks and cells [`Ty::Lock`] stands for: std's, tokio's
/// and parking_lot's, and std's `LocalKey` (a `thread_local!` static).
pub(crate) const LOCKS: &[&str] = &[
    "Mutex",
    "RwLock",
    "ReentrantMutex",
    "FairMutex",
    "RefCell",
    "OnceLock",
    "OnceCell",
    "LocalKey",
];

/// The names of the guards of [`LOCKS`], which deref to what they guard.
const GUARDS: &[&str] = &[
    "MutexGuard",
    "RwLockReadGuard",
    "RwLockWriteGuard",
    "ReentrantMutexGuard",
    "Ref",
    "RefMut",
    "OwnedMutexGuard",
    "OwnedRwLockReadGuard",
    "OwnedRwLockWriteGuard",
];

/// What a path resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Res {
    /// An item of the tokio crate, by its path inside tokio.
    Tokio(Vec<String>),
    Module(ModPath),
    Struct(ModPath, String),
    /// A trait defined at module level.
    Trait(ModPath, String),
    Fn {
        ret: Option<TypeExpr>,
        module: ModPath,
        file: FileId,
    },
    /// A `static` or `const` item, of the type `ty` as written in `module`.
    Static {
        ty: TypeExpr,
        module: ModPath,
        file: FileId,
    },
    /// A type alias: its type parameters and the type it stands for, as
    /// written in `module`.
    Alias {
        params: Vec<String>,
        ty: TypeExpr,
        module: ModPath,
        file: FileId,
    },
    /// A local item or variable that shadows whatever else the name means.
    Local,
    /// Another crate, std, or something the audit cannot see.
    External,
}

/// The type of an expression, as far as the audit follows types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Tokio(TokioType),
    /// A `Result` or `Option` of the inner type.
    Wrapped(Box<Ty>),
    Struct(ModPath, String),
    /// A tuple: each element's type, where known.
    Tuple(Vec<Option<Ty>>),
    /// A sequence of values of the inner type: a `Vec`, `VecDeque`,
    /// `LinkedList`, an array or an iterator over one, as `for` takes it.
    Seq(Box<Ty>),
    /// A lock or cell holding a value of the inner type: a `Mutex` or
    /// `RwLock` (std's, tokio's, parking_lot's), a `RefCell`, a `OnceLock`
    /// or `OnceCell`, or a `thread_local!` static's `LocalKey`.
    Lock(Box<Ty>),
    /// What locking, borrowing or initialising a [`Ty::Lock`] gives: a guard
    /// that derefs to the inner type, or a `Result`, `Option` or future of
    /// one, which `unwrap`, `expect`, `?` or `.await` turn into the guard.
    Locked(Box<Ty>),
    /// A map (`HashMap`, `BTreeMap`, indexmap's `IndexMap`) whose values
    /// have the inner type; the keys are not followed.
    Map(Box<Ty>),
    /// A map's `entry(key)`, whose `or_insert*` and `or_default` give a
    /// value of the inner type.
    Entry(Box<Ty>),
    /// A channel's receiving end (`Receiver`, `UnboundedReceiver`: tokio's
    /// `mpsc`, `broadcast`, `oneshot` and `watch`, std's and the common
    /// crates'), by its name, of values of the inner type.
    Receiver(Box<Ty>),
}

impl Ty {
    fn tokio(ty: TokioType, wrapped: bool) -> Ty {
        if wrapped {
            Ty::Wrapped(Box::new(Ty::Tokio(ty)))
        } else {
            Ty::Tokio(ty)
        }
    }

    /// A tuple, if any element's type is known.
    pub(crate) fn tuple(elems: Vec<Option<Ty>>) -> Option<Ty> {
        elems
            .iter()
            .any(Option::is_some)
            .then_some(Ty::Tuple(elems))
    }

    /// How many types this one is made of.
    fn size(&self) -> usize {
        match self {
            Ty::Tokio(_) | Ty::Struct(..) => 1,
            Ty::Wrapped(inner)
            | Ty::Seq(inner)
            | Ty::Lock(inner)
            | Ty::Locked(inner)
            | Ty::Map(inner)
            | Ty::Entry(inner)
            | Ty::Receiver(inner) => 1 + inner.size(),
            Ty::Tuple(elems) => 1 + elems.iter().flatten().map(Ty::size).sum::<usize>(),
        }
    }

    /// The type a value derefs to: a guard's inner type, else itself.
    pub(crate) fn unguarded(self) -> Ty {
        match self {
            Ty::Locked(inner) => inner.unguarded(),
            ty => ty,
        }
    }

    /// Converts `(type, wrapped)` pairs from the tokio tables.
    pub(crate) fn from_table(entry: Option<(TokioType, bool)>) -> Option<Ty> {
        entry.map(|(ty, wrapped)| Ty::tokio(ty, wrapped))
    }
}

/// A block's scope: its items and imports, and the variables bound so far.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub(crate) scope: Scope,
    pub(crate) vars: HashMap<String, Option<Ty>>,
}

/// Where a lookup happens.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub(crate) module: &'a ModPath,
    pub(crate) file: FileId,
    pub(crate) frames: &'a [Frame],
    pub(crate) self_ty: Option<&'a Ty>,
}

/// What the answer of a module lookup depends on besides the module and the
/// name; part of the memo key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The name is imported explicitly by the scope at this position.
    Use(usize),
    /// The name is not explicit in the module: its glob imports, ranked for
    /// this file (`None`: in order), decide.
    Globs(Option<FileId>),
}

/// The memoised answers of one module's lookups, by name and basis. The
/// answers depend on the crate index alone, so every file of the crate and
/// every thread shares them.
#[derive(Debug, Default)]
pub(crate) struct Memo(Mutex<HashMap<String, Answers>>);

/// The memoised answers for one name, by basis (usually just one).
type Answers = Vec<(Basis, Option<Res>)>;

impl Memo {
    fn get(&self, name: &str, basis: Basis) -> Option<Option<Res>> {
        let memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let answers = memo.get(name)?;
        answers
            .iter()
            .find(|(b, _)| *b == basis)
            .map(|(_, res)| res.clone())
    }

    fn insert(&self, name: &str, basis: Basis, res: Option<Res>) {
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match memo.get_mut(name) {
            Some(answers) => {
                if !answers.iter().any(|(b, _)| *b == basis) {
                    answers.push((basis, res));
                }
            }
            None => {
                memo.insert(name.to_owned(), vec![(basis, res)]);
            }
        }
    }
}

/// A module lookup in progress.
struct Active<'a> {
    module: &'a Module,
    basis: Basis,
    name: String,
}

impl Active<'_> {
    fn is(&self, module: &Module, basis: Basis, name: &str) -> bool {
        std::ptr::eq(self.module, module) && self.basis == basis && self.name == name
    }
}

/// An answer waiting for an enclosing lookup it relied on.
struct Pending<'a> {
    module: &'a Module,
    basis: Basis,
    name: String,
    res: Option<Res>,
    /// The outermost position in the active lookups it relied on.
    at: usize,
}

/// Resolves paths and types against one crate's index.
///
/// A name in a module is found among the module's explicit items and
/// imports, else through its glob imports: depth first, in order, each
/// module once, the first module that names it explicitly (or a tokio module
/// that exports it) wins. A lookup that meets itself again (imports forming
/// a cycle) finds nothing through that cycle, as in rustc.
///
/// Module lookups depend on nothing but the index, so their answers are
/// memoised in the index ([`Memo`]) and shared by every file and thread. An
/// answer that relied on an enclosing lookup still in progress waits until
/// that lookup is done: it is memoised if the enclosing lookup found nothing
/// (so the cycle through it could not have found anything either), else
/// dropped. A resolver holds only the lookups in progress, so each file's
/// scan makes its own.
pub(crate) struct Resolver<'a> {
    index: &'a CrateIndex,
    /// The module lookups in progress, outermost first.
    active: RefCell<Vec<Active<'a>>>,
    /// The outermost position in `active` that the lookup being computed has
    /// met again (a cycle), `usize::MAX` when none.
    cycle_at: Cell<usize>,
    /// Answers waiting for an enclosing lookup.
    pending: RefCell<Vec<Pending<'a>>>,
    /// The block-scope imports being followed: the frame's position and the
    /// name. Block scopes are not memoised, so a cycle among them is caught
    /// here.
    active_frames: RefCell<Vec<(usize, String)>>,
    /// The type aliases being expanded, one inside the other (by module and
    /// written type): one that meets itself again (a cycle, which rustc
    /// rejects) names nothing.
    expanding: RefCell<Vec<(ModPath, TypeExpr)>>,
    /// How many aliases the outermost expansion in progress has expanded:
    /// aliases that each use the one before twice double the work at each
    /// step (and square the size of the type), so one type stops at
    /// [`ALIAS_EXPANSIONS`], and an argument larger than [`ALIAS_ARG_SIZE`]
    /// is left unknown.
    expansions: Cell<usize>,
}

/// The most alias expansions one written type may take.
const ALIAS_EXPANSIONS: usize = 256;

/// The largest type (in [`Ty::size`]) an alias's argument may be.
const ALIAS_ARG_SIZE: usize = 64;

impl<'a> Resolver<'a> {
    pub(crate) fn new(index: &'a CrateIndex) -> Self {
        Resolver {
            index,
            active: RefCell::default(),
            cycle_at: Cell::new(usize::MAX),
            pending: RefCell::default(),
            active_frames: RefCell::default(),
            expanding: RefCell::default(),
            expansions: Cell::new(0),
        }
    }

    /// Resolves as much of `segments` as it can; returns what the resolved
    /// prefix names and how many segments that prefix has.
    pub(crate) fn resolve(
        &self,
        env: Env<'_>,
        leading_colon: bool,
        segments: &[String],
    ) -> (Res, usize) {
        let Some(first) = segments.first() else {
            return (Res::External, 0);
        };
        let mut res = if leading_colon {
            self.extern_crate(env.module, first)
        } else {
            match first.as_str() {
                "crate" => Res::Module(crate_root(env.module)),
                "self" => Res::Module(env.module.clone()),
                "super" => Res::Module(parent(env.module)),
                "Self" => match env.self_ty {
                    Some(Ty::Struct(module, name)) => Res::Struct(module.clone(), name.clone()),
                    Some(Ty::Tokio(ty)) => {
                        Res::Tokio(ty.path().split("::").map(str::to_owned).collect())
                    }
                    _ => Res::External,
                },
                name => self.lookup_first(env, name),
            }
        };
        let mut used = 1;
        for segment in &segments[1..] {
            res = match res {
                Res::Tokio(mut path) => {
                    path.push(segment.clone());
                    Res::Tokio(path)
                }
                Res::Module(module) if segment == "super" => Res::Module(parent(&module)),
                Res::Module(module) => match self.lookup_in_module(&module, env.file, segment) {
                    Some(res) => res,
                    None => return (Res::External, used),
                },
                other => return (other, used),
            };
            used += 1;
        }
        (res, used)
    }

    /// The `static`, `const` or fn a path names where a module or type of
    /// that name hides it from [`Resolver::resolve`] (`static RT` next to
    /// `struct RT {}`; see `Scope::values`): defined in the block or module
    /// the path leads to, not imported.
    pub(crate) fn value(
        &self,
        env: Env<'_>,
        leading_colon: bool,
        segments: &[String],
    ) -> Option<Res> {
        let (last, prefix) = segments.split_last()?;
        let module = if prefix.is_empty() {
            if leading_colon {
                return None;
            }
            for frame in env.frames.iter().rev() {
                let scope = &frame.scope;
                if let Some(kind) = scope.values.get(last) {
                    return Some(item_res(scope, last, kind, false));
                }
                if scope.items.contains_key(last) || scope.uses.contains_key(last) {
                    return None;
                }
            }
            env.module.clone()
        } else {
            match self.resolve(env, leading_colon, prefix) {
                (Res::Module(module), used) if used == prefix.len() => module,
                _ => return None,
            }
        };
        let (_, module) = self.index.module(&module)?;
        let scope = &module.scopes[module.explicit_scope(last, env.file)?];
        let kind = scope.values.get(last)?;
        Some(item_res(scope, last, kind, true))
    }

    /// The path `name` is imported by where `env` is (`std::sync::mpsc`
    /// for `mpsc` after `use std::sync::mpsc;`), when a `use` of the
    /// innermost block or module naming it explicitly brings it; not
    /// followed further (a re-export's own import is not looked through).
    pub(crate) fn import_of(&self, env: Env<'_>, name: &str) -> Option<Vec<String>> {
        for frame in env.frames.iter().rev() {
            let scope = &frame.scope;
            if scope.items.contains_key(name) {
                return None;
            }
            if let Some(path) = scope.uses.get(name) {
                return Some(path.segments.clone());
            }
        }
        let (_, module) = self.index.module(env.module)?;
        let scope = &module.scopes[module.explicit_scope(name, env.file)?];
        scope.uses.get(name).map(|path| path.segments.clone())
    }

    /// The crate `name` of the extern prelude of the crate `module` is in:
    /// tokio or tokio-util, the package's library, another member's library
    /// it depends on, or one the audit cannot see.
    fn extern_crate(&self, module: &ModPath, name: &str) -> Res {
        let index = self.index.layer(module);
        match index.roots.iter().find(|(n, _)| n == name) {
            Some((_, krate)) => Res::Tokio(vec![(*krate).to_owned()]),
            None if index.lib.as_deref() == Some(name) => Res::Module(lib_root(name)),
            None => match index.externs.get(name) {
                Some(lib) => Res::Module(lib_root(lib)),
                None => Res::External,
            },
        }
    }

    /// Looks a single name up from `env`: blocks, innermost first, then the
    /// module, then the extern prelude.
    fn lookup_first(&self, env: Env<'_>, name: &str) -> Res {
        for (i, frame) in env.frames.iter().enumerate().rev() {
            let inner = Env {
                frames: &env.frames[..=i],
                ..env
            };
            if let Some(res) = self.lookup_in_frame(inner, i, &frame.scope, name) {
                return res;
            }
        }
        if let Some(res) = self.lookup_in_module(env.module, env.file, name) {
            return res;
        }
        self.extern_crate(env.module, name)
    }

    /// Looks `name` up in the block scope at position `i`: its items, its
    /// imports, then its globs. An import that leads back to itself names
    /// nothing the audit can follow.
    fn lookup_in_frame(&self, env: Env<'_>, i: usize, scope: &Scope, name: &str) -> Option<Res> {
        if let Some(kind) = scope.items.get(name) {
            return Some(item_res(scope, name, kind, false));
        }
        let path = scope.uses.get(name);
        if path.is_none() && scope.globs.is_empty() {
            return None;
        }
        let following = |(at, n): &(usize, String)| *at == i && n == name;
        if self.active_frames.borrow().iter().any(following) {
            return Some(Res::External);
        }
        self.active_frames.borrow_mut().push((i, name.to_owned()));
        let res = match path {
            Some(path) => Some(self.resolve_use(env, path)),
            None => scope
                .globs
                .iter()
                .find_map(|glob| self.lookup_in_glob(env, glob, name)),
        };
        self.active_frames.borrow_mut().pop();
        res
    }

    /// Looks `name` up in `module`, ranking the scopes of `file` first;
    /// memoised (see [`Resolver`]).
    /// Whether looking up `name` in `module` on `basis` is already under way
    /// further out: a cycle, whose outermost position the lookup being
    /// computed records (see `cycle_at`).
    fn in_cycle(&self, module: &Module, basis: Basis, name: &str) -> bool {
        let position = self
            .active
            .borrow()
            .iter()
            .position(|a| a.is(module, basis, name));
        if let Some(position) = position {
            self.cycle_at.set(self.cycle_at.get().min(position));
        }
        position.is_some()
    }

    fn lookup_in_module(&self, path: &ModPath, file: FileId, name: &str) -> Option<Res> {
        let (path, module) = self.index.module(path)?;
        let basis = match module.explicit_scope(name, file) {
            Some(first) => {
                let scope = &module.scopes[first];
                if let Some(kind) = scope.items.get(name) {
                    return Some(item_res(scope, name, kind, true));
                }
                Basis::Use(first)
            }
            None if !module.has_globs => return None,
            None => Basis::Globs(module.ranks_by(file).then_some(file)),
        };
        if let Some(res) = module.memo.get(name, basis) {
            return res;
        }
        if self.in_cycle(module, basis, name) {
            return None;
        }
        let outer_cycle_at = self.cycle_at.replace(usize::MAX);
        let position = {
            let mut active = self.active.borrow_mut();
            active.push(Active {
                module,
                basis,
                name: name.to_owned(),
            });
            active.len() - 1
        };
        let pending_from = self.pending.borrow().len();
        let res = match basis {
            Basis::Use(s) => {
                let scope = &module.scopes[s];
                scope
                    .uses
                    .get(name)
                    .map(|use_path| self.resolve_use(module_env(path, scope), use_path))
            }
            Basis::Globs(_) => self.search_globs(path, module, file, name),
        };
        let Active { name, .. } = self.active.borrow_mut().pop().expect("pushed above");
        let cycle_at = self.cycle_at.get();
        {
            // The answers below this lookup that waited for it: each relied on
            // it or on lookups enclosing it.
            let mut pending = self.pending.borrow_mut();
            let waiting = pending.split_off(pending_from);
            if res.is_none() {
                for p in waiting {
                    if p.at >= position {
                        p.module.memo.insert(&p.name, p.basis, p.res);
                    } else {
                        pending.push(p);
                    }
                }
            }
            if cycle_at >= position {
                module.memo.insert(&name, basis, res.clone());
            } else {
                pending.push(Pending {
                    module,
                    basis,
                    name,
                    res: res.clone(),
                    at: cycle_at,
                });
            }
        }
        self.cycle_at.set(outer_cycle_at.min(cycle_at));
        res
    }

    /// Finds `name` through the glob imports of `start` (which does not name
    /// it explicitly): depth first over glob imports in rank order, visiting
    /// each module once. The first module that names it explicitly answers
    /// (through its own lookup); a glob of a tokio module answers if tokio
    /// exports the name there.
    fn search_globs(
        &self,
        start_path: &'a ModPath,
        start: &'a Module,
        file: FileId,
        name: &str,
    ) -> Option<Res> {
        let mut visited: Vec<&'a Module> = vec![start];
        // Each entry: a module being searched and the (scope, glob) pairs
        // still to follow, in rank order, last first.
        let mut stack = vec![(start_path, start, globs(start, file))];
        while let Some((path, module, todo)) = stack.last_mut() {
            let Some((s, g)) = todo.pop() else {
                stack.pop();
                continue;
            };
            let (path, module) = (*path, *module);
            let scope = &module.scopes[s];
            let env = module_env(path, scope);
            let target = match self.resolve_use(env, &scope.globs[g]) {
                Res::Tokio(mut tokio_path) => {
                    if tokio_api::glob_exports(&tokio_path, name) {
                        tokio_path.push(name.to_owned());
                        return Some(Res::Tokio(tokio_path));
                    }
                    continue;
                }
                Res::Module(target) => target,
                _ => continue,
            };
            let Some((target_path, target)) = self.index.module(&target) else {
                continue;
            };
            if visited.iter().any(|m| std::ptr::eq(*m, target)) {
                continue;
            }
            visited.push(target);
            if target.explicit.contains_key(name) {
                // `None` only when that lookup is in progress further out:
                // a cycle, which finds nothing; search on.
                if let Some(res) = self.lookup_in_module(target_path, scope.file, name) {
                    return Some(res);
                }
                continue;
            }
            let basis = Basis::Globs(target.ranks_by(scope.file).then_some(scope.file));
            if self.in_cycle(target, basis, name) {
                continue;
            }
            stack.push((target_path, target, globs(target, scope.file)));
        }
        None
    }

    fn resolve_use(&self, env: Env<'_>, path: &UsePath) -> Res {
        let (res, used) = self.resolve(env, path.leading_colon, &path.segments);
        if used == path.segments.len() {
            res
        } else {
            Res::External
        }
    }

    fn lookup_in_glob(&self, env: Env<'_>, glob: &UsePath, name: &str) -> Option<Res> {
        match self.resolve_use(env, glob) {
            Res::Tokio(path) if tokio_api::glob_exports(&path, name) => {
                let mut path = path;
                path.push(name.to_owned());
                Some(Res::Tokio(path))
            }
            Res::Module(module) => self.lookup_in_module(&module, env.file, name),
            _ => None,
        }
    }

    /// The type a written type names, from `env`: a tokio type or a struct
    /// of the crate (also through type aliases), or one of the std and
    /// common wrappers the audit follows, named by its last segment unless
    /// the crate defines that name itself.
    pub(crate) fn type_of(&self, env: Env<'_>, ty: &TypeExpr) -> Option<Ty> {
        let (leading_colon, segments, args) = match ty {
            TypeExpr::Path {
                leading_colon,
                segments,
                args,
            } => (leading_colon, segments, args),
            TypeExpr::Tuple(elems) => {
                let elems = elems.iter().map(|e| self.type_of(env, e)).collect();
                return Ty::tuple(elems);
            }
            TypeExpr::Seq(elem) => return Some(Ty::Seq(Box::new(self.type_of(env, elem)?))),
            TypeExpr::Known(ty) => return Some((**ty).clone()),
            TypeExpr::Unknown => return None,
        };
        let last = segments.last()?.as_str();
        if segments.len() == 1 && last == "Self" {
            return env.self_ty.cloned();
        }
        let inner = || self.type_of(env, args.first()?);
        match self.resolve(env, *leading_colon, segments) {
            (Res::Tokio(path), used) if used == segments.len() => match tokio_api::item(&path) {
                Some(TokioItem::Type(ty)) => return Some(Ty::Tokio(ty)),
                Some(_) => return None,
                // `tokio::sync::Mutex`: a wrapper, by its name.
                None => {}
            },
            (Res::Struct(module, name), used) if used == segments.len() => {
                return Some(Ty::Struct(module, name));
            }
            (alias @ Res::Alias { .. }, used) if used == segments.len() => {
                let args = args.iter().map(|arg| self.type_of(env, arg)).collect();
                return self.expand_alias(alias, args);
            }
            (
                Res::Local
                | Res::Fn { .. }
                | Res::Static { .. }
                | Res::Alias { .. }
                | Res::Trait(..),
                _,
            ) => return None,
            _ => {}
        }
        match last {
            "Result" | "Option" => Some(Ty::Wrapped(Box::new(inner()?))),
            "Arc" | "Rc" | "Box" | "LazyLock" | "LazyCell" | "Lazy" => inner(),
            // A guard, named as a fn's return type.
            name if GUARDS.contains(&name) => Some(Ty::Locked(Box::new(inner()?))),
            name if LOCKS.contains(&name) => Some(Ty::Lock(Box::new(inner()?))),
            "Vec" | "VecDeque" | "LinkedList" => Some(Ty::Seq(Box::new(inner()?))),
            "Receiver" | "UnboundedReceiver" => Some(Ty::Receiver(Box::new(inner()?))),
            // `HashMap<K, V>` (and a hasher after them): the values.
            "HashMap" | "BTreeMap" | "IndexMap" => {
                Some(Ty::Map(Box::new(self.type_of(env, args.get(1)?)?)))
            }
            _ => None,
        }
    }

    /// The type the alias `alias` stands for, its parameters given `args`
    /// (resolved where the alias is used; `Set::new()` gives none).
    pub(crate) fn expand_alias(&self, alias: Res, args: Vec<Option<Ty>>) -> Option<Ty> {
        let Res::Alias {
            params,
            ty,
            module,
            file,
        } = alias
        else {
            return None;
        };
        let key = (module.clone(), ty.clone());
        if self.expanding.borrow().is_empty() {
            self.expansions.set(0);
        }
        if self.expanding.borrow().contains(&key) || self.expansions.get() >= ALIAS_EXPANSIONS {
            return None;
        }
        self.expansions.set(self.expansions.get() + 1);
        let mut args = args.into_iter();
        let bound: Vec<(String, TypeExpr)> = params
            .into_iter()
            .map(|param| {
                let arg = args.next().flatten();
                let arg = arg.filter(|arg| arg.size() <= ALIAS_ARG_SIZE);
                (
                    param,
                    arg.map_or(TypeExpr::Unknown, |t| TypeExpr::Known(Box::new(t))),
                )
            })
            .collect();
        let ty = substitute(ty, &bound);
        self.expanding.borrow_mut().push(key);
        let expanded = self.type_in(Some(&ty), &module, file);
        self.expanding.borrow_mut().pop();
        expanded
    }

    /// The type of the field `name` of the struct `module::ty`.
    pub(crate) fn field(&self, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        let def = self.index.struct_def(module, ty)?;
        let i = def.fields.iter().position(|(field, _)| field == name)?;
        let resolved = def.resolved.get(i)?.get_or_init(|| {
            let self_ty = Ty::Struct(module.clone(), ty.to_owned());
            let env = Env {
                module,
                file: def.file,
                frames: &[],
                self_ty: Some(&self_ty),
            };
            self.type_of(env, &def.fields[i].1)
        });
        resolved.clone()
    }

    /// The names of the fields of the struct `module::ty`, in order (`0`,
    /// `1`, … for a tuple struct).
    pub(crate) fn field_names(&self, module: &ModPath, ty: &str) -> Option<Vec<String>> {
        let def = self.index.struct_def(module, ty)?;
        Some(def.fields.iter().map(|(name, _)| name.clone()).collect())
    }

    /// What the fn or method `name` of the struct `module::ty` returns.
    pub(crate) fn method(&self, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        self.impl_item(false, module, ty, name)
    }

    /// The type of the associated const `name` of the struct `module::ty`:
    /// one of its impls defines it, else a trait it implements declares it
    /// (with a default, or the impl would define it).
    pub(crate) fn assoc_const(&self, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        self.impl_item(true, module, ty, name)
            .or_else(|| self.trait_default(module, ty, name))
    }

    /// The type of the const `name` that a trait the struct `module::ty`
    /// implements declares: the impl's self type must resolve to the struct.
    fn trait_default(&self, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        let self_ty = Ty::Struct(module.clone(), ty.to_owned());
        self.index.trait_impls(ty).find_map(|imp| {
            let env = Env {
                module: &imp.module,
                file: imp.file,
                frames: &[],
                self_ty: None,
            };
            let this = imp
                .resolved_self
                .get_or_init(|| self.type_of(env, &imp.self_ty));
            if this.as_ref() != Some(&self_ty) {
                return None;
            }
            let Some(TypeExpr::Path {
                leading_colon,
                segments,
                ..
            }) = &imp.ret
            else {
                return None;
            };
            self.const_of_trait(env, *leading_colon, segments, name)
        })
    }

    /// The type of the const `name` of the trait the path `segments` names
    /// in `env` (`Svc` in `<W as Svc>::RT` or `T: Svc`), if it names one.
    pub(crate) fn const_of_trait(
        &self,
        env: Env<'_>,
        leading_colon: bool,
        segments: &[String],
        name: &str,
    ) -> Option<Ty> {
        match self.resolve(env, leading_colon, segments) {
            (Res::Trait(module, tr), used) if used == segments.len() => {
                self.trait_const(&module, &tr, name)
            }
            _ => None,
        }
    }

    /// The type of the associated const `name` the trait `module::tr`
    /// declares. Every impl's must be that type, so it holds for
    /// `<T as Trait>::NAME` whatever `T` is.
    pub(crate) fn trait_const(&self, module: &ModPath, tr: &str, name: &str) -> Option<Ty> {
        let def = self
            .index
            .trait_consts(tr, name)
            .find(|def| def.module == *module)?;
        def.resolved_ret
            .get_or_init(|| self.type_in(def.ret.as_ref(), &def.module, def.file))
            .clone()
    }

    /// What the fn `name` (or with `consts`, the const) of an impl of the
    /// struct `module::ty` returns (is).
    fn impl_item(&self, consts: bool, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        let self_ty = Ty::Struct(module.clone(), ty.to_owned());
        self.index.impl_items(consts, ty, name).find_map(|f| {
            let env = Env {
                module: &f.module,
                file: f.file,
                frames: &[],
                self_ty: None,
            };
            let this = f
                .resolved_self
                .get_or_init(|| self.type_of(env, &f.self_ty));
            let env = Env {
                self_ty: Some(&self_ty),
                ..env
            };
            match this {
                Some(this) if this != &self_ty => None,
                Some(_) => f
                    .resolved_ret
                    .get_or_init(|| self.type_of(env, f.ret.as_ref()?))
                    .clone(),
                None => self.type_of(env, f.ret.as_ref()?),
            }
        })
    }

    /// A type written in `module` (a fn's return type, a static's type),
    /// resolved there.
    pub(crate) fn type_in(
        &self,
        ret: Option<&TypeExpr>,
        module: &ModPath,
        file: FileId,
    ) -> Option<Ty> {
        let env = Env {
            module,
            file,
            frames: &[],
            self_ty: None,
        };
        self.type_of(env, ret?)
    }
}

/// What an item defined in `scope` resolves to; a module or struct is
/// followed only when defined at module level.
fn item_res(scope: &Scope, name: &str, kind: &ItemKind, module_level: bool) -> Res {
    match (kind, module_level) {
        (ItemKind::Module, true) => {
            let mut path = scope.module.clone();
            path.push(name.to_owned());
            Res::Module(path)
        }
        (ItemKind::Struct, true) => Res::Struct(scope.module.clone(), name.to_owned()),
        (ItemKind::Trait, true) => Res::Trait(scope.module.clone(), name.to_owned()),
        (ItemKind::Fn(ret), _) => Res::Fn {
            ret: ret.clone(),
            module: scope.module.clone(),
            file: scope.file,
        },
        (ItemKind::Static(ty), _) => Res::Static {
            ty: ty.clone(),
            module: scope.module.clone(),
            file: scope.file,
        },
        (ItemKind::Alias(params, ty), _) => Res::Alias {
            params: params.clone(),
            ty: ty.clone(),
            module: scope.module.clone(),
            file: scope.file,
        },
        _ => Res::Local,
    }
}

/// Where a module-level import of `scope` is resolved.
fn module_env<'e>(path: &'e ModPath, scope: &Scope) -> Env<'e> {
    Env {
        module: path,
        file: scope.file,
        frames: &[],
        self_ty: None,
    }
}

/// The (scope, glob) positions of `module`'s glob imports, ranked for
/// `file`, last first (to be popped).
fn globs(module: &Module, file: FileId) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = module
        .ranked(file)
        .flat_map(|s| (0..module.scopes[s].globs.len()).map(move |g| (s, g)))
        .collect();
    out.reverse();
    out
}

fn parent(module: &ModPath) -> ModPath {
    let mut parent = module.clone();
    parent.pop();
    parent
}

/// `ty` with each of the type parameters in `bound` replaced by its value.
fn substitute(ty: TypeExpr, bound: &[(String, TypeExpr)]) -> TypeExpr {
    match ty {
        TypeExpr::Path {
            leading_colon: false,
            segments,
            args,
        } if segments.len() == 1 && args.is_empty() => {
            match bound.iter().find(|(param, _)| *param == segments[0]) {
                Some((_, value)) => value.clone(),
                None => TypeExpr::Path {
                    leading_colon: false,
                    segments,
                    args,
                },
            }
        }
        TypeExpr::Path {
            leading_colon,
            segments,
            args,
        } => TypeExpr::Path {
            leading_colon,
            segments,
            args: args.into_iter().map(|a| substitute(a, bound)).collect(),
        },
        TypeExpr::Tuple(elems) => {
            TypeExpr::Tuple(elems.into_iter().map(|e| substitute(e, bound)).collect())
        }
        TypeExpr::Seq(elem) => TypeExpr::Seq(Box::new(substitute(*elem, bound))),
        other => other,
    }
}
