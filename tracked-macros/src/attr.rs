//! Parses the attribute's arguments: `type = "…"`, `name = "…"`,
//! `owner = <expr>`, `tier = <int>`, `crate = "…"`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, LitInt, LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(owner);
    syn::custom_keyword!(tier);
}

/// The parsed arguments; every one is optional.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) ty: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) owner: Option<Expr>,
    pub(crate) tier: Option<(u8, Span)>,
    /// The path the expansion names the runtime by, for a crate that
    /// reaches `tracked` through another (`crate = "obs::tracked"`).
    pub(crate) krate: Option<syn::Path>,
    /// Problems found after the arguments parsed, such as a duplicate key;
    /// reported together with the fn's own problems.
    pub(crate) errors: Option<syn::Error>,
}

impl Parse for Args {
    // Input: `type = "Consensus", owner = peer.id.clone()`
    // Output: `Args { ty: Some("Consensus"), owner: Some(peer.id.clone()), .. }`
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(Token![type]) {
                let key = input.parse::<Token![type]>()?;
                let value = string_value(input, key.span, "type")?;
                args.set_str(key.span, "type", value, |a| &mut a.ty);
            } else if lookahead.peek(kw::name) {
                let key = input.parse::<kw::name>()?;
                let value = string_value(input, key.span, "name")?;
                args.set_str(key.span, "name", value, |a| &mut a.name);
            } else if lookahead.peek(kw::owner) {
                let key = input.parse::<kw::owner>()?;
                equals(input, key.span, "owner", "owner = session.id()")?;
                let value: Expr = input.parse()?;
                if args.owner.is_some() {
                    args.error(key.span, "duplicate `owner` argument");
                } else {
                    args.owner = Some(value);
                }
            } else if lookahead.peek(kw::tier) {
                let key = input.parse::<kw::tier>()?;
                equals(input, key.span, "tier", "tier = 2")?;
                let value = tier_value(input, &mut args);
                if args.tier.is_some() {
                    args.error(key.span, "duplicate `tier` argument");
                } else if let Some(value) = value {
                    args.tier = Some((value, key.span));
                }
            } else if lookahead.peek(Token![crate]) {
                let key = input.parse::<Token![crate]>()?;
                equals(input, key.span, "crate", "crate = obs::tracked")?;
                let path = crate_path(input, &mut args)?;
                if args.krate.is_some() {
                    args.error(key.span, "duplicate `crate` argument");
                } else {
                    args.krate = path;
                }
            } else if input.peek(LitStr) {
                // `#[tracked("Network")]`: most likely the type, unnamed.
                let value: LitStr = input.parse()?;
                return Err(syn::Error::new(
                    value.span(),
                    format!(
                        "arguments are named: `type = {:?}` for a task type, `name = …` for a name",
                        value.value()
                    ),
                ));
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

impl Args {
    fn error(&mut self, span: Span, message: &str) {
        self.add(syn::Error::new(span, message));
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    fn set_str(
        &mut self,
        key: Span,
        key_name: &str,
        value: Result<LitStr, syn::Error>,
        slot: impl Fn(&mut Args) -> &mut Option<LitStr>,
    ) {
        let value = match value {
            Ok(value) => value,
            Err(error) => {
                // Kept whole: rebuilt from `error.span()` it would point at
                // the first token of `TaskType::NETWORK` only.
                self.add(error);
                return;
            }
        };
        if slot(self).is_some() {
            self.error(key, &format!("duplicate `{key_name}` argument"));
        } else if value.value().trim().is_empty() {
            self.error(value.span(), &format!("`{key_name}` must not be empty"));
        } else {
            *slot(self) = Some(value);
        }
    }
}

/// `= "…"`; a value of another kind is consumed and reported at its tokens,
/// so that parsing can go on to the next key.
fn string_value(
    input: ParseStream<'_>,
    span: Span,
    key: &str,
) -> syn::Result<Result<LitStr, syn::Error>> {
    equals(input, span, key, &format!("{key} = \"…\""))?;
    if input.peek(LitStr) {
        return Ok(Ok(input.parse()?));
    }
    let other: Expr = input.parse()?;
    let message = match (task_type_constant(&other), bare_word(&other)) {
        (Some(name), _) if key == "type" => format!(
            "`type` expects a string literal: `type = \"{name}\"` is the type of this constant"
        ),
        (_, Some(word)) => {
            format!("`{key}` expects a string literal: quote it, `{key} = \"{word}\"`")
        }
        _ => {
            let example = if key == "type" {
                "Consensus"
            } else {
                "net::accept"
            };
            format!("`{key}` expects a string literal, e.g. `{key} = \"{example}\"`")
        }
    };
    Ok(Err(syn::Error::new_spanned(other, message)))
}

/// The one identifier `expr` is (`Network` in `type = Network`): most
/// likely the value meant, unquoted.
fn bare_word(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().map(|i| i.to_string()),
        _ => None,
    }
}

/// The name of the predefined `TaskType` constant `expr` names, such as
/// `"Network"` for `TaskType::NETWORK`.
fn task_type_constant(expr: &Expr) -> Option<&'static str> {
    let Expr::Path(path) = expr else {
        return None;
    };
    let mut segments = path.path.segments.iter().rev();
    let (constant, ty) = (segments.next()?, segments.next()?);
    if ty.ident != "TaskType" {
        return None;
    }
    const PREDEFINED: [(&str, &str); 7] = [
        ("NETWORK", "Network"),
        ("CONSENSUS", "Consensus"),
        ("DATABASE", "Database"),
        ("MAINTENANCE", "Maintenance"),
        ("GAME_LOGIC", "GameLogic"),
        ("UI", "UI"),
        ("GENERAL", "General"),
    ];
    PREDEFINED
        .iter()
        .find(|(name, _)| constant.ident == name)
        .map(|(_, value)| *value)
}

/// The `=` after a key, with an error at the key when it is missing.
fn equals(input: ParseStream<'_>, span: Span, key: &str, example: &str) -> syn::Result<()> {
    // `key =` followed by nothing, or by the next argument, has no value
    // either; said at the key, not as a parse error at the attribute's end.
    if input.peek(Token![=]) && !(input.peek2(Token![,]) || no_token_after_equals(input)) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(
            span,
            format!("`{key}` needs a value: `{example}`"),
        ))
    }
}

/// Whether the `=` the input starts with is its last token.
fn no_token_after_equals(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    fork.parse::<Token![=]>().is_ok() && fork.is_empty()
}

/// The path after `crate =`, written as a path (`obs::tracked`, which a
/// `macro_rules!` can give as `$crate::tracked`) or in a string, as tokio's
/// and serde's `crate` arguments are.
fn crate_path(input: ParseStream<'_>, args: &mut Args) -> syn::Result<Option<syn::Path>> {
    if !input.peek(LitStr) {
        return syn::Path::parse_mod_style(input).map(Some);
    }
    let lit: LitStr = input.parse()?;
    match lit.parse_with(syn::Path::parse_mod_style) {
        Ok(path) => Ok(Some(path)),
        Err(_) => {
            let message =
                "`crate` names the path to the `tracked` crate, e.g. `crate = obs::tracked`";
            args.error(lit.span(), message);
            Ok(None)
        }
    }
}

/// `= <integer from 0 to 255>`.
fn tier_value(input: ParseStream<'_>, args: &mut Args) -> Option<u8> {
    if input.peek(LitInt) {
        let lit: LitInt = input.parse().ok()?;
        // Any integer suffix (`2u8`) is fine: the value is what counts.
        match lit.base10_parse::<u8>() {
            Ok(value) => return Some(value),
            Err(_) => args.error(lit.span(), "`tier` must be an integer from 0 to 255"),
        }
        return None;
    }
    match input.parse::<Expr>() {
        Ok(other) => args.errors_at(&other, "`tier` expects an integer literal, e.g. `tier = 2`"),
        Err(error) => args.error(error.span(), &error.to_string()),
    }
    None
}

impl Args {
    fn errors_at(&mut self, tokens: &impl quote::ToTokens, message: &str) {
        self.add(syn::Error::new_spanned(tokens, message));
    }
}
