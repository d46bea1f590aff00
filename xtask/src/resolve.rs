//! Name resolution and type inference over the crate index, without a
//! compiler: enough to tell tokio's items from look-alikes and to follow a
//! receiver to a tokio type through `let`s, parameters, fields and the return
//! types of the crate's own fns.

use crate::index::{CrateIndex, FileId, ItemKind, ModPath, Scope, TypeExpr, UsePath};
use crate::tokio_api::{self, TokioItem, TokioType};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// How far imports are followed before giving up (import cycles, or chains
/// longer than real code has).
const MAX_DEPTH: usize = 24;

/// What a path resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Res {
    /// An item of the tokio crate, by its path inside tokio.
    Tokio(Vec<String>),
    Module(ModPath),
    Struct(ModPath, String),
    Fn {
        ret: Option<TypeExpr>,
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
}

impl Ty {
    fn tokio(ty: TokioType, wrapped: bool) -> Ty {
        if wrapped {
            Ty::Wrapped(Box::new(Ty::Tokio(ty)))
        } else {
            Ty::Tokio(ty)
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

/// How many module lookups one resolution may make: glob imports can form
/// cycles and fans that a depth limit alone would explore exponentially.
const BUDGET: usize = 4096;

/// A module lookup: the module, the file whose scopes rank first, the name.
type LookupKey = (ModPath, FileId, String);

/// Resolves paths and types against one crate's index.
///
/// Module lookups depend on nothing but the index, so their answers are
/// memoised. A lookup that meets itself again (glob imports forming a cycle)
/// finds nothing through that cycle, as in rustc. An answer that relied on
/// an enclosing lookup still in progress waits until that lookup is done: it
/// is memoised if the enclosing lookup found nothing (so the cycle through it
/// could not have found anything either), else dropped. Answers that hit
/// `MAX_DEPTH` or the budget are never memoised.
pub(crate) struct Resolver<'a> {
    index: &'a CrateIndex,
    budget: Cell<usize>,
    memo: RefCell<HashMap<LookupKey, Option<Res>>>,
    /// The module lookups in progress, outermost first.
    active: RefCell<Vec<LookupKey>>,
    /// The outermost position in `active` that the lookup being computed has
    /// met again (a cycle), `usize::MAX` when none.
    cycle_at: Cell<usize>,
    /// Whether the lookup being computed hit `MAX_DEPTH` or the budget.
    truncated: Cell<bool>,
    /// Answers waiting for an enclosing lookup, with the outermost position
    /// in `active` they relied on.
    pending: RefCell<Vec<(LookupKey, Option<Res>, usize)>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(index: &'a CrateIndex) -> Self {
        Resolver {
            index,
            budget: Cell::new(BUDGET),
            memo: RefCell::default(),
            active: RefCell::default(),
            cycle_at: Cell::new(usize::MAX),
            truncated: Cell::new(false),
            pending: RefCell::default(),
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
        self.budget.set(BUDGET);
        self.resolve_at(env, leading_colon, segments, 0)
    }

    fn resolve_at(
        &self,
        env: Env<'_>,
        leading_colon: bool,
        segments: &[String],
        depth: usize,
    ) -> (Res, usize) {
        let Some(first) = segments.first() else {
            return (Res::External, 0);
        };
        if depth > MAX_DEPTH {
            self.truncated.set(true);
            return (Res::External, 0);
        }
        let mut res = if leading_colon {
            self.extern_crate(first)
        } else {
            match first.as_str() {
                "crate" => Res::Module(Vec::new()),
                "self" => Res::Module(env.module.clone()),
                "super" => Res::Module(parent(env.module)),
                "Self" => match env.self_ty {
                    Some(Ty::Struct(module, name)) => Res::Struct(module.clone(), name.clone()),
                    Some(Ty::Tokio(ty)) => {
                        Res::Tokio(ty.path().split("::").skip(1).map(str::to_owned).collect())
                    }
                    _ => Res::External,
                },
                name => self.lookup_first(env, name, depth),
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
                Res::Module(module) => {
                    match self.lookup_in_module(&module, env.file, segment, depth + 1) {
                        Some(res) => res,
                        None => return (Res::External, used),
                    }
                }
                other => return (other, used),
            };
            used += 1;
        }
        (res, used)
    }

    fn extern_crate(&self, name: &str) -> Res {
        if self.index.tokio_names.iter().any(|n| n == name) {
            Res::Tokio(Vec::new())
        } else {
            Res::External
        }
    }

    /// Looks a single name up from `env`: blocks, innermost first, then the
    /// module, then the extern prelude.
    fn lookup_first(&self, env: Env<'_>, name: &str, depth: usize) -> Res {
        for (i, frame) in env.frames.iter().enumerate().rev() {
            let inner = Env {
                frames: &env.frames[..=i],
                ..env
            };
            if let Some(res) = self.lookup_in_scope(inner, &frame.scope, name, depth, false) {
                return res;
            }
        }
        if let Some(res) = self.lookup_in_module(env.module, env.file, name, depth) {
            return res;
        }
        self.extern_crate(name)
    }

    /// Looks `name` up among the scopes of `module`, the current file's
    /// first; memoised (see [`Resolver`]).
    fn lookup_in_module(
        &self,
        module: &ModPath,
        file: FileId,
        name: &str,
        depth: usize,
    ) -> Option<Res> {
        let key = (module.clone(), file, name.to_owned());
        if let Some(res) = self.memo.borrow().get(&key) {
            return res.clone();
        }
        let position = self.active.borrow().iter().position(|k| *k == key);
        if let Some(position) = position {
            self.cycle_at.set(self.cycle_at.get().min(position));
            return None;
        }
        let Some(budget) = self.budget.get().checked_sub(1) else {
            self.truncated.set(true);
            return None;
        };
        self.budget.set(budget);
        let outer_cycle_at = self.cycle_at.replace(usize::MAX);
        let outer_truncated = self.truncated.replace(false);
        let position = {
            let mut active = self.active.borrow_mut();
            active.push(key);
            active.len() - 1
        };
        let pending_from = self.pending.borrow().len();
        let res = self.lookup_in_module_uncached(module, file, name, depth);
        let key = self.active.borrow_mut().pop().expect("pushed above");
        let cycle_at = self.cycle_at.get();
        let truncated = self.truncated.get();
        {
            // The answers below this lookup that waited for it: each relied on
            // it or on lookups enclosing it.
            let mut pending = self.pending.borrow_mut();
            let mut memo = self.memo.borrow_mut();
            let waiting = pending.split_off(pending_from);
            if res.is_none() && !truncated {
                for (key, res, at) in waiting {
                    if at >= position {
                        memo.insert(key, res);
                    } else {
                        pending.push((key, res, at));
                    }
                }
            }
            if !truncated {
                if cycle_at >= position {
                    memo.insert(key, res.clone());
                } else {
                    pending.push((key, res.clone(), cycle_at));
                }
            }
        }
        self.cycle_at.set(outer_cycle_at.min(cycle_at));
        self.truncated.set(outer_truncated || truncated);
        res
    }

    fn lookup_in_module_uncached(
        &self,
        module: &ModPath,
        file: FileId,
        name: &str,
        depth: usize,
    ) -> Option<Res> {
        let scopes = self.index.modules.get(module)?;
        let ordered = scopes
            .iter()
            .filter(|s| s.file == file)
            .chain(scopes.iter().filter(|s| s.file != file));
        let env = |scope: &Scope| Env {
            module,
            file: scope.file,
            frames: &[],
            self_ty: None,
        };
        for scope in ordered.clone() {
            if let Some(res) = self.lookup_in_scope(env(scope), scope, name, depth, true) {
                return Some(res);
            }
        }
        for scope in ordered {
            for glob in &scope.globs {
                if let Some(res) = self.lookup_in_glob(env(scope), glob, name, depth) {
                    return Some(res);
                }
            }
        }
        None
    }

    /// Looks `name` up among a scope's items and imports (not its globs,
    /// which rank below every explicit name).
    fn lookup_in_scope(
        &self,
        env: Env<'_>,
        scope: &Scope,
        name: &str,
        depth: usize,
        module_level: bool,
    ) -> Option<Res> {
        if let Some(kind) = scope.items.get(name) {
            return Some(match (kind, module_level) {
                (ItemKind::Module, true) => {
                    let mut path = scope.module.clone();
                    path.push(name.to_owned());
                    Res::Module(path)
                }
                (ItemKind::Struct, true) => Res::Struct(scope.module.clone(), name.to_owned()),
                (ItemKind::Fn(ret), _) => Res::Fn {
                    ret: ret.clone(),
                    module: scope.module.clone(),
                    file: scope.file,
                },
                _ => Res::Local,
            });
        }
        if let Some(path) = scope.uses.get(name) {
            return Some(self.resolve_use(env, path, depth + 1));
        }
        if !module_level {
            for glob in &scope.globs {
                if let Some(res) = self.lookup_in_glob(env, glob, name, depth) {
                    return Some(res);
                }
            }
        }
        None
    }

    fn resolve_use(&self, env: Env<'_>, path: &UsePath, depth: usize) -> Res {
        let (res, used) = self.resolve_at(env, path.leading_colon, &path.segments, depth);
        if used == path.segments.len() {
            res
        } else {
            Res::External
        }
    }

    fn lookup_in_glob(
        &self,
        env: Env<'_>,
        glob: &UsePath,
        name: &str,
        depth: usize,
    ) -> Option<Res> {
        match self.resolve_use(env, glob, depth + 1) {
            Res::Tokio(path) if tokio_api::glob_exports(&path, name) => {
                let mut path = path;
                path.push(name.to_owned());
                Some(Res::Tokio(path))
            }
            Res::Module(module) => self.lookup_in_module(&module, env.file, name, depth + 1),
            _ => None,
        }
    }

    /// The type a written type names, from `env`.
    pub(crate) fn type_of(&self, env: Env<'_>, ty: &TypeExpr) -> Option<Ty> {
        let TypeExpr::Path {
            leading_colon,
            segments,
            args,
        } = ty
        else {
            return None;
        };
        let last = segments.last()?.as_str();
        match last {
            "Result" | "Option" => {
                return Some(Ty::Wrapped(Box::new(self.type_of(env, args.first()?)?)));
            }
            "Arc" | "Rc" | "Box" => return self.type_of(env, args.first()?),
            _ => {}
        }
        if segments.len() == 1 && last == "Self" {
            return env.self_ty.cloned();
        }
        match self.resolve(env, *leading_colon, segments) {
            (Res::Tokio(path), used) if used == segments.len() => match tokio_api::item(&path)? {
                TokioItem::Type(ty) => Some(Ty::Tokio(ty)),
                _ => None,
            },
            (Res::Struct(module, name), used) if used == segments.len() => {
                Some(Ty::Struct(module, name))
            }
            _ => None,
        }
    }

    /// The type of the field `name` of the struct `module::ty`.
    pub(crate) fn field(&self, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        let def = self.index.structs.get(&(module.clone(), ty.to_owned()))?;
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

    /// What the fn or method `name` of the struct `module::ty` returns.
    pub(crate) fn method(&self, module: &ModPath, ty: &str, name: &str) -> Option<Ty> {
        let fns = self.index.impl_fns.get(&(ty.to_owned(), name.to_owned()))?;
        let self_ty = Ty::Struct(module.clone(), ty.to_owned());
        fns.iter().find_map(|f| {
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

    /// What a crate fn returns, resolved where the fn is defined.
    pub(crate) fn fn_returns(
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

fn parent(module: &ModPath) -> ModPath {
    let mut parent = module.clone();
    parent.pop();
    parent
}
