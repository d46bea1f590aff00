//! The catalogue lint: every `#[tracked(...)]` site, checked for malformed
//! arguments, duplicate task names and undeclared task types.

use crate::diagnostic::{Diagnostic, Region, Rule, SourceFile};
use std::collections::HashMap;

/// The keys `#[tracked(...)]` accepts.
const KEYS: &str = "`type`, `name`, `owner`, `tier`, `crate`";

/// Whether an attribute is `#[tracked]` or `#[tracked::tracked]`.
pub(crate) fn is_tracked(attr: &syn::Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segments == ["tracked"] || segments == ["tracked", "tracked"]
}

/// One `#[tracked]` site as the scan saw it.
#[derive(Debug)]
pub(crate) struct Site {
    /// Where the fn's name is.
    pub(crate) region: Region,
    /// The task name: the `name` argument, or the module path and fn name.
    pub(crate) name: String,
    pub(crate) name_region: Option<Region>,
    pub(crate) ty: Option<(String, Region)>,
    pub(crate) errors: Vec<(Region, String)>,
}

impl Site {
    /// Reads the attribute's arguments; `default_name` is the module path and
    /// fn name the macro would use.
    pub(crate) fn new(attr: &syn::Attribute, region: Region, default_name: String) -> Site {
        let mut site = Site {
            region,
            name: default_name,
            name_region: None,
            ty: None,
            errors: Vec::new(),
        };
        match &attr.meta {
            syn::Meta::Path(_) => {}
            syn::Meta::NameValue(nv) => site.errors.push((
                Region::of(nv.eq_token.span),
                format!("expected `#[tracked(key = value, ...)]` with keys {KEYS}"),
            )),
            syn::Meta::List(_) => {
                let mut seen = Vec::new();
                let result = attr.parse_nested_meta(|meta| {
                    let key = meta
                        .path
                        .get_ident()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let key_region = Region::of(
                        meta.path
                            .segments
                            .first()
                            .map_or_else(proc_macro2::Span::call_site, |s| s.ident.span()),
                    );
                    let value: Option<syn::Expr> = if meta.input.peek(syn::Token![=]) {
                        Some(meta.value()?.parse()?)
                    } else {
                        None
                    };
                    if !matches!(key.as_str(), "type" | "name" | "owner" | "tier" | "crate") {
                        let shown = quote_path(&meta.path);
                        site.errors.push((
                            key_region,
                            format!("unknown key `{shown}`; expected one of {KEYS}"),
                        ));
                        return Ok(());
                    }
                    if seen.contains(&key) {
                        site.errors
                            .push((key_region, format!("duplicate key `{key}`")));
                        return Ok(());
                    }
                    seen.push(key.clone());
                    let Some(value) = value else {
                        site.errors
                            .push((key_region, format!("`{key}` needs a value: `{key} = ...`")));
                        return Ok(());
                    };
                    site.check_value(&key, &value);
                    Ok(())
                });
                if let Err(err) = result {
                    let start = err.span();
                    site.errors.push((Region::of(start), err.to_string()));
                }
            }
        }
        site
    }

    fn check_value(&mut self, key: &str, value: &syn::Expr) {
        let lit = match value {
            syn::Expr::Lit(lit) => Some(&lit.lit),
            _ => None,
        };
        let region = Region::of(syn::spanned::Spanned::span(value));
        match (key, lit) {
            ("type" | "name", Some(syn::Lit::Str(s))) => {
                let text = s.value();
                if text.trim().is_empty() {
                    self.errors
                        .push((region, format!("`{key}` must not be empty")));
                } else if key == "type" {
                    self.ty = Some((text, region));
                } else {
                    self.name = text;
                    self.name_region = Some(region);
                }
            }
            ("type" | "name", _) => self.errors.push((
                region,
                format!("`{key}` must be a string literal, as in `{key} = \"...\"`"),
            )),
            ("tier", Some(syn::Lit::Int(_))) | ("owner", _) => {}
            ("crate", Some(syn::Lit::Str(_))) => {}
            ("crate", None) if matches!(value, syn::Expr::Path(_)) => {}
            ("crate", _) => self.errors.push((
                region,
                "`crate` must be a path, as in `crate = obs::tracked`".to_owned(),
            )),
            ("tier", _) => self
                .errors
                .push((region, "`tier` must be an integer literal".to_owned())),
            _ => {}
        }
    }
}

fn quote_path(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Checks the sites of one crate, whose task names must also differ from
/// those of the `library` it links. `types` is the declared list, if any.
pub(crate) fn lint(
    library: &[(SourceFile<'_>, Vec<Site>)],
    sites: &[(SourceFile<'_>, Vec<Site>)],
    types: Option<&[String]>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut first: HashMap<&str, (&str, Region)> = HashMap::new();
    for (file, sites) in library {
        for site in sites {
            let region = site.name_region.unwrap_or(site.region);
            first.entry(&site.name).or_insert((file.path, region));
        }
    }
    for (file, sites) in sites {
        for site in sites {
            for (region, message) in &site.errors {
                out.push(file.diagnostic(
                    Rule::MalformedTrackedAttribute,
                    *region,
                    message.clone(),
                ));
            }
            if let (Some((ty, region)), Some(types)) = (&site.ty, types) {
                if !types.iter().any(|t| t == ty) {
                    let mut d = file.diagnostic(
                        Rule::UndeclaredTaskType,
                        *region,
                        format!("task type `{ty}` is not declared"),
                    );
                    d.help = Some(format!(
                        "declared types are {}; add `{ty}` to `[workspace.metadata.tracked] types` or use one of them",
                        types.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                    ));
                    out.push(d);
                }
            }
            let region = site.name_region.unwrap_or(site.region);
            match first.get(site.name.as_str()) {
                Some((path, at)) => {
                    let mut d = file.diagnostic(
                        Rule::DuplicateTaskName,
                        region,
                        format!("duplicate task name `{}`", site.name),
                    );
                    d.help = Some(format!(
                        "first used at {path}:{}:{}; give one of them a distinct `name = \"...\"`",
                        at.line, at.column
                    ));
                    out.push(d);
                }
                None => {
                    first.insert(&site.name, (file.path, region));
                }
            }
        }
    }
    out
}
