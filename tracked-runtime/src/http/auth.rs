//! Bearer tokens: who is calling, and which tasks they may see and cancel.
//!
//! A token is either unscoped (sees and cancels everything) or scoped to an
//! owner. A scoped caller is answered as if other owners' tasks did not
//! exist: reading or cancelling one gives 404, not 403. A 403 would confirm
//! that the id exists and belongs to someone else, and since ids are
//! sequential, it would let a tenant enumerate other tenants' activity.
//! Aggregate endpoints (`/stats`, `/metrics`, `/catalogue`) count every
//! owner's tasks, so a scoped token gets 403 there: the endpoint exists for
//! everyone, only not for this token.

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};

use super::error::ApiError;
use crate::TaskSnapshot;

/// What a token may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every task, every endpoint.
    All,
    /// Only tasks with this owner (a [`Group`](crate::Group)'s name).
    Owner(Arc<str>),
}

/// The caller of one request, as its token says.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// No token presented, and reads are open.
    Anonymous,
    /// A known token.
    Token(Scope),
}

impl Caller {
    /// The owner a scoped caller is limited to.
    pub(crate) fn owner(&self) -> Option<&Arc<str>> {
        match self {
            Caller::Token(Scope::Owner(owner)) => Some(owner),
            _ => None,
        }
    }

    pub(crate) fn may_see(&self, task: &TaskSnapshot) -> bool {
        self.may_see_owned_by(task.owner.as_deref())
    }

    /// Whether this caller may see what a task owned by `owner` does.
    pub(crate) fn may_see_owned_by(&self, owner: Option<&str>) -> bool {
        self.owner().is_none_or(|mine| owner == Some(&**mine))
    }

    /// Mutations need a token, whatever the read policy.
    pub(crate) fn require_token(&self) -> Result<(), ApiError> {
        match self {
            Caller::Anonymous => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this request changes state and needs a bearer token (Authorization: Bearer <token>)",
            )),
            Caller::Token(_) => Ok(()),
        }
    }

    /// Aggregates over every owner need an unscoped caller.
    pub(crate) fn require_unscoped(&self) -> Result<(), ApiError> {
        match self.owner() {
            Some(owner) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this token is scoped to owner `{owner}`; this endpoint counts every owner's tasks and needs an unscoped token"
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The tokens a server accepts and whether reads need one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tokens {
    pub(crate) tokens: Vec<(String, Scope)>,
    pub(crate) reads_need_token: bool,
}

impl Tokens {
    /// Identifies the caller of a request: 401 for an unknown token, or for
    /// no token when reads need one.
    pub(crate) fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = match headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => {
                let value = value.to_str().unwrap_or("");
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .map(str::trim)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "the Authorization header must be `Bearer <token>`",
                        )
                    })?;
                Some(token)
            }
        };
        match presented {
            None if self.reads_need_token => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server needs a bearer token (Authorization: Bearer <token>)",
            )),
            None => Ok(Caller::Anonymous),
            Some(token) => self
                .tokens
                .iter()
                // Every token is compared in full, so the time taken does not
                // say how much of a guess was right.
                .fold(None, |found, (known, scope)| {
                    if equal_in_constant_time(known.as_bytes(), token.as_bytes()) {
                        Some(scope.clone())
                    } else {
                        found
                    }
                })
                .map(Caller::Token)
                .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown bearer token")),
        }
    }
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh token: 128 random bits from the OS, as 32 hex digits.
pub(crate) fn generate_token() -> String {
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if from_os.is_err() {
        // No /dev/urandom (not a Unix): std's hasher keys are seeded from the
        // OS's random source, so two fresh hashers give 128 unpredictable bits.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (generate_token(), generate_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn unknown_and_malformed_tokens_are_refused() {
        let tokens = Tokens {
            tokens: vec![("secret".into(), Scope::All)],
            reads_need_token: false,
        };
        let mut headers = HeaderMap::new();
        assert!(matches!(tokens.caller(&headers), Ok(Caller::Anonymous)));
        headers.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(tokens.caller(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "Basic secret".parse().unwrap());
        assert!(tokens.caller(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        assert!(matches!(
            tokens.caller(&headers),
            Ok(Caller::Token(Scope::All))
        ));
    }
}
