//! The path the expansion names the runtime by: `::tracked`, or the one an
//! attribute's `crate = "…"` gives.
//!
//! Kept for one expansion in a thread-local, set by [`Scope::enter`]: the
//! spawn rewriting and the fn's expansion both write it, many calls deep.

use std::cell::RefCell;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote_spanned};

thread_local! {
    static RUNTIME: RefCell<Option<syn::Path>> = const { RefCell::new(None) };
}

/// The path of the `tracked` crate in the expansion being made: the
/// default at `span`, a given one at its own (the `crate` argument's).
pub(crate) fn runtime(span: Span) -> TokenStream {
    RUNTIME.with_borrow(|path| match path {
        Some(path) => path.to_token_stream(),
        None => quote_spanned!(span=> ::tracked),
    })
}

/// The path set for one expansion; dropped, the default again.
pub(crate) struct Scope(());

impl Scope {
    pub(crate) fn enter(path: Option<syn::Path>) -> Scope {
        RUNTIME.set(path);
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        RUNTIME.set(None);
    }
}
