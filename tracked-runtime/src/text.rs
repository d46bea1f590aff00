//! Texts a task hands the tracker, cut to a bound: history keeps them for
//! thousands of tasks, so they must not grow with what a task chooses to
//! say (an error that embeds a whole response body, say).

/// The most a progress message keeps, in bytes: the log is bounded in
/// messages ([`TrackerBuilder::progress_log`](crate::TrackerBuilder::progress_log))
/// and each message in size.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;

/// The most an `Err`'s text or a panic message keeps, in bytes.
pub(crate) const MAX_FAILURE_BYTES: usize = 4096;

const CUT: &str = "…";

/// `text` cut to `max` bytes on a character boundary, ending with an
/// ellipsis that says it was cut.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if let Some(end) = cut_at(&text, max) {
        text.truncate(end);
        text.push_str(CUT);
        text.shrink_to_fit();
    }
    text
}

/// [`cut`] of a borrowed text, copying only what is kept.
pub(crate) fn cut_copy(text: &str, max: usize) -> String {
    match cut_at(text, max) {
        Some(end) => [&text[..end], CUT].concat(),
        None => text.to_owned(),
    }
}

/// What [`cut`] makes of every text over `max` bytes that starts with
/// `prefix`, if `prefix` reaches past where they are cut: they all keep the
/// same bytes, which are `prefix`'s. `None` if a text starting with
/// `prefix` may be kept whole or cut within it.
#[cfg(feature = "journal")]
pub(crate) fn cut_of_longer(prefix: &str, max: usize) -> Option<String> {
    if prefix.len() <= max.saturating_sub(CUT.len()) {
        return None;
    }
    Some([&prefix[..kept(prefix, max)], CUT].concat())
}

/// Where `text` is cut to keep it, with the ellipsis, within `max` bytes;
/// `None` if it fits.
fn cut_at(text: &str, max: usize) -> Option<usize> {
    (text.len() > max).then(|| kept(text, max))
}

/// How many bytes of `text`, longer than `max` less the ellipsis, a cut
/// to `max` keeps: up to a character boundary.
fn kept(text: &str, max: usize) -> usize {
    let mut end = max.saturating_sub(CUT.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::{cut, cut_copy};

    #[test]
    fn a_long_text_is_cut_on_a_character_boundary_with_an_ellipsis() {
        assert_eq!(cut("short".into(), 8), "short");
        assert_eq!(cut("exactly8".into(), 8), "exactly8");
        assert_eq!(cut("ninechars".into(), 8), "ninec…");
        // "é" is two bytes: the cut steps back rather than split it.
        let cut_text = cut("aéééé".into(), 7);
        assert_eq!(cut_text, "aé…");
        assert!(cut_text.len() <= 7);
        assert_eq!(cut_copy("aéééé", 7), cut_text);
        assert_eq!(cut_copy("short", 8), "short");
    }

    #[test]
    #[cfg(feature = "journal")]
    fn a_prefix_past_the_cut_gives_the_cut_of_every_longer_text() {
        use super::cut_of_longer;
        // Texts over 8 bytes keep 5: a prefix of 5 bytes or less is not cut.
        assert_eq!(cut_of_longer("ninec", 8), None);
        assert_eq!(cut_of_longer("ninech", 8).as_deref(), Some("ninec…"));
        assert_eq!(cut("ninechars".into(), 8), "ninec…");
        // Stepping back over a two-byte letter, as `cut` does.
        assert_eq!(cut_of_longer("aééé", 7).as_deref(), Some("aé…"));
        assert_eq!(cut("aéééé".into(), 7), "aé…");
    }
}
