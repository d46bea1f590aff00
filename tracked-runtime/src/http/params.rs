//! Query parameters of `GET /tasks` and of the cancel endpoints, checked
//! strictly: an unknown key or a bad value is a 400 naming it. So is a path
//! segment or query string the framework cannot decode: its rejections are
//! taken as `Result`s and turned into the API's JSON errors here, after the
//! caller is identified.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::error::ApiError;
use crate::registry::OVERFLOW;
use crate::{TaskId, TaskState, TaskType, Tracker};

/// The query string as key-value pairs, or why it is not one: each key and
/// value percent-decoded (`+` a space) and required to be UTF-8 text, where
/// the framework's decoding would silently put `U+FFFD` in its place.
pub(crate) struct Pairs(Result<Vec<(String, String)>, String>);

impl<S: Send + Sync> FromRequestParts<S> for Pairs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Pairs(decode_query(parts.uri.query().unwrap_or(""))))
    }
}

fn decode_query(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).ok_or_else(|| {
                format!("the parameter name `{key}` is not UTF-8 text once percent-decoded")
            })?;
            let value = decode(value)
                .ok_or_else(|| format!("`{key}` is not UTF-8 text once percent-decoded"))?;
            Ok((key, value))
        })
        .collect()
}

/// `text` with `+` as a space and each `%XX` as its byte, if the bytes are
/// UTF-8; a `%` not followed by two hex digits stays as it is.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = match bytes[i] {
            b'+' => b' ',
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(&[high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    i += 2;
                    // Two hex digits: at most 0xff, so `as` cannot truncate.
                    (hex(high) << 4 | hex(low)) as u8
                }
                _ => b'%',
            },
            byte => byte,
        };
        out.push(byte);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(digit: u8) -> u32 {
    char::from(digit).to_digit(16).unwrap_or(0)
}

/// The one parameter of a path (`{id}`, `{group}`), or why it is not text.
pub(crate) type Segment = Result<Path<String>, PathRejection>;

/// The query string's pairs, or a 400 saying why it is not one. No
/// parameter may be repeated: none is documented as repeatable, and taking
/// the first or the last would silently drop the other.
pub(crate) fn pairs(query: Pairs) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = query.0.map_err(ApiError::bad_request)?;
    let mut seen = HashSet::with_capacity(pairs.len());
    match pairs.iter().find(|(key, _)| !seen.insert(key.as_str())) {
        Some((key, _)) => Err(ApiError::bad_request(format!(
            "`{key}` is given more than once; each parameter is taken once"
        ))),
        None => Ok(pairs),
    }
}

/// The path parameter as text, or a 400 naming it.
pub(crate) fn segment(path: Segment) -> Result<String, ApiError> {
    path.map(|Path(raw)| raw).map_err(|rejection| {
        let reason = match &rejection {
            PathRejection::FailedToDeserializePathParams(failed) => match failed.kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => {
                    format!("`{key}` in the path is not UTF-8 text once percent-decoded")
                }
                _ => rejection.body_text(),
            },
            _ => rejection.body_text(),
        };
        ApiError::new(rejection.status(), reason)
    })
}

/// Results per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// The largest `limit` accepted.
pub(crate) const MAX_LIMIT: usize = 500;

/// The cancel timeout when `timeout_ms` is not given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest `timeout_ms` accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// What `GET /tasks` asked for.
#[derive(Debug, Default)]
pub(crate) struct ListParams {
    /// `None` when the type was given but no task of it was ever seen: the
    /// list is empty, and the name is not interned (a client could send
    /// endless distinct names).
    pub(crate) ty: Option<Option<TaskType>>,
    pub(crate) state: Option<TaskState>,
    pub(crate) owner: Option<String>,
    pub(crate) name: Option<String>,
    /// Only children of this task.
    pub(crate) parent: Option<TaskId>,
    /// Only tasks the watchdog warned about (`true`), or not (`false`).
    pub(crate) warned: Option<bool>,
    /// Only live tasks whose parent has ended (`true`), or not (`false`).
    pub(crate) orphaned: Option<bool>,
    /// Only live tasks idle at least this long since their latest poll.
    pub(crate) idle: Option<Duration>,
    /// Only live tasks that lost their waker (`true`), or not (`false`).
    pub(crate) lost_waker: Option<bool>,
    pub(crate) limit: usize,
    /// The last id of the previous page.
    pub(crate) cursor: Option<u64>,
    /// `order=finished`: the newest endings in memory, newest first, on one
    /// page (ids are handed out in blocks per thread, so id order is not
    /// the order tasks ended in).
    pub(crate) by_end: bool,
}

impl ListParams {
    /// Whether the journal can answer these filters: it keeps how tasks
    /// ended, not the watchdog's warnings, and idleness, orphans and lost
    /// wakers are of live tasks.
    #[cfg(feature = "journal")]
    pub(crate) fn journal_can_answer(&self) -> bool {
        self.warned.is_none()
            && self.idle.is_none()
            && self.orphaned.is_none()
            && self.lost_waker.is_none()
    }

    pub(crate) fn parse(tracker: &Tracker, pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut params = ListParams {
            limit: DEFAULT_LIMIT,
            ..ListParams::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "type" => params.ty = Some(known_type(tracker, value)?),
                "state" => {
                    params.state = Some(value.parse().map_err(ApiError::bad_request)?);
                }
                "owner" => params.owner = Some(owner(value.clone())?),
                "name" => params.name = Some(value.clone()),
                "parent" => params.parent = Some(parent(value)?),
                "warned" => params.warned = Some(parse_bool(key, value)?),
                "orphaned" => params.orphaned = Some(parse_bool(key, value)?),
                "idle_ms" => params.idle = Some(parse_idle(tracker, value)?),
                "lost_waker" => {
                    let lost = parse_bool(key, value)?;
                    if !tracker.follows_wakes() {
                        return Err(ApiError::bad_request(
                            "`lost_waker` needs a tracker that follows wakes (`TrackerBuilder::wakes(true)`); this one does not",
                        ));
                    }
                    params.lost_waker = Some(lost);
                }
                "limit" => params.limit = parse_limit(value, "page with `cursor` for more")?,
                "cursor" => {
                    params.cursor = Some(whole(value).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`cursor` must be the `next_cursor` of a previous page, not `{value}`"
                        ))
                    })?);
                }
                "order" => {
                    params.by_end = match value.as_str() {
                        "id" => false,
                        "finished" => true,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "`order` must be `id` or `finished`, not `{value}`"
                            )))
                        }
                    }
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter `{other}`; expected one of type, state, owner, name, parent, warned, idle_ms, orphaned, lost_waker, order, limit, cursor"
                    )))
                }
            }
        }
        if params.by_end {
            if !params.state.is_some_and(TaskState::is_finished) {
                return Err(ApiError::bad_request(
                    "`order=finished` lists finished tasks: give a `state` of completed, failed, panicked or cancelled",
                ));
            }
            if params.cursor.is_some() {
                return Err(ApiError::bad_request(
                    "`order=finished` has no `cursor`: it lists the newest endings in memory, up to `limit`",
                ));
            }
        }
        Ok(params)
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "`{key}` must be true or false, not `{value}`"
        ))),
    }
}

/// The `idle_ms` of a listing: a whole number of milliseconds, answerable
/// only by a tracker that times polls.
fn parse_idle(tracker: &Tracker, value: &str) -> Result<Duration, ApiError> {
    let idle = value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "`idle_ms` must be a whole number of milliseconds, not `{value}`"
            ))
        })?;
    if !tracker.measures_busy_time() {
        return Err(ApiError::bad_request(
            "`idle_ms` needs a tracker that times polls (`TrackerBuilder::busy_time(true)`); this one does not",
        ));
    }
    Ok(idle)
}

/// A `limit`; `more` says where the rest is.
fn parse_limit(value: &str, more: &str) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ApiError::bad_request(format!(
            "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{value}`; {more}"
        ))),
    }
}

/// The type of exactly that name among those the tracker has counted or
/// predefined, or `None`. Names are case-sensitive, as [`TaskType`]s are
/// (`network` may be a type of its own), but a name that differs from a known
/// type only in case is a 400 naming the known one, not an empty page; so is
/// an empty name, unless a task has the empty type.
///
/// Past the types a tracker counts apart ([`OVERFLOW`]), a type is looked
/// for among the tasks themselves.
fn known_type(tracker: &Tracker, name: &str) -> Result<Option<TaskType>, ApiError> {
    let known: Vec<TaskType> = TaskType::PREDEFINED
        .into_iter()
        .chain(tracker.stats().by_type.into_keys())
        .collect();
    if let Some(ty) = known.iter().find(|ty| ty.name() == name) {
        return Ok(Some(*ty));
    }
    let lower = name.to_lowercase();
    if let Some(ty) = known.iter().find(|ty| ty.name().to_lowercase() == lower) {
        return Err(ApiError::bad_request(format!(
            "no type `{name}`; type names are case-sensitive: did you mean `{ty}`?"
        )));
    }
    if known.contains(&OVERFLOW) {
        if let Some(ty) = tracker.type_named(name) {
            return Ok(Some(ty));
        }
    }
    if name.is_empty() {
        // Most likely a URL template's missing value, not a type of "".
        return Err(ApiError::bad_request(
            "an empty `type` names no type here; leave the parameter out to list every type",
        ));
    }
    Ok(None)
}

/// The `timeout_ms` of a cancel.
pub(crate) fn cancel_timeout(pairs: &[(String, String)]) -> Result<Duration, ApiError> {
    let mut timeout = DEFAULT_TIMEOUT;
    for (key, value) in pairs {
        match key.as_str() {
            "timeout_ms" => {
                timeout = value
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_millis)
                    .filter(|t| *t <= MAX_TIMEOUT)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`timeout_ms` must be a whole number from 0 to {}, not `{value}`",
                            MAX_TIMEOUT.as_millis()
                        ))
                    })?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{other}`; expected timeout_ms"
                )))
            }
        }
    }
    Ok(timeout)
}

/// The `limit` of `GET /tasks/{id}`: how many of its children it lists.
pub(crate) fn children_limit(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                limit = parse_limit(value, "page through them all with `/tasks?parent=<id>`")?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{other}`; expected limit"
                )))
            }
        }
    }
    Ok(limit)
}

/// A task id from a path segment.
pub(crate) fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    whole(raw).and_then(TaskId::from_u64).ok_or_else(|| {
        ApiError::bad_request(format!("a task id is a positive whole number, not `{raw}`"))
    })
}

/// The `parent` of a listing: a task id, written as in a path.
fn parent(value: &str) -> Result<TaskId, ApiError> {
    task_id(value).map_err(|_| {
        ApiError::bad_request(format!(
            "`parent` must be a task id, a positive whole number, not `{value}`"
        ))
    })
}

/// A whole number written as ids and cursors are: digits only, without a
/// sign or a leading zero, so that each number has one spelling.
fn whole(raw: &str) -> Option<u64> {
    let canonical =
        raw.bytes().all(|b| b.is_ascii_digit()) && !(raw.len() > 1 && raw.starts_with('0'));
    canonical.then(|| raw.parse().ok()).flatten()
}

/// An owner named in a path or a filter, never empty. Code may give tasks
/// the empty owner (`Tracker::group("")`), but in a request an empty name is
/// far likelier a client's slip (`/groups//cancel`) than that group.
pub(crate) fn owner(name: String) -> Result<String, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "an empty owner names no group here; tasks of the empty owner are listed unfiltered and cancelled by id, or from code with `Tracker::cancel_owner(\"\")`",
        ));
    }
    Ok(name)
}

/// Rejects any parameter on endpoints that take none.
pub(crate) fn none(pairs: &[(String, String)]) -> Result<(), ApiError> {
    match pairs.first() {
        Some((key, _)) => Err(ApiError::bad_request(format!(
            "unknown parameter `{key}`; this endpoint takes none"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn escapes_and_plus_decode_and_bytes_must_be_utf8() {
        assert_eq!(
            decode("caf%C3%A9+au%20lait").as_deref(),
            Some("café au lait")
        );
        assert_eq!(decode("100%").as_deref(), Some("100%"));
        assert_eq!(decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(
            decode("%+1").as_deref(),
            Some("% 1"),
            "a sign is not a hex digit"
        );
        assert_eq!(decode("%e2%9c%93").as_deref(), Some("✓"));
        assert_eq!(decode("%FF"), None);
        assert_eq!(decode("a%C3"), None);
    }
}
