//! Names made safe for where they are shown: cut to a length and escaped for a picture, a
//! terminal line or a markdown table cell.
//!
//! Class names come from data files (`batches.meta.txt`), experiment and variant names from
//! experiment files, and both are read back from CSV files a person may have edited: any of them
//! can be very long or hold control characters. Every function here first cuts its input to a
//! number of characters ([`truncate`]), so the work that follows (glyph layout, measuring,
//! escaping) is bounded however long the input is. CSV cells need nothing from here: the `csv`
//! crate quotes them.

use std::borrow::Cow;

/// Appended to a text that was cut.
pub const ELLIPSIS: char = '…';

/// Longest name drawn in a picture (a class name, a legend entry, an experiment name in a title).
pub const PICTURE_MAX_CHARS: usize = 40;
/// Longest whole line drawn in a picture (a title that holds names); longer lines are cut before
/// they are measured.
pub const PICTURE_LINE_MAX_CHARS: usize = 300;
/// Longest name printed on a terminal line.
pub const TERMINAL_MAX_CHARS: usize = 200;
/// Longest text put into a markdown table cell.
pub const MARKDOWN_MAX_CHARS: usize = 200;

/// `s` cut to at most `max_chars` characters (Unicode scalar values, not bytes): a longer text
/// keeps its first `max_chars - 1` characters followed by [`ELLIPSIS`]. A text that fits is
/// borrowed unchanged. Only the first `max_chars + 1` characters are looked at.
pub fn truncate(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some(_) if max_chars == 0 => Cow::Borrowed(""),
        Some(_) => {
            let end = s
                .char_indices()
                .nth(max_chars - 1)
                .map_or(s.len(), |(i, _)| i);
            let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
            out.push_str(&s[..end]);
            out.push(ELLIPSIS);
            Cow::Owned(out)
        }
    }
}

/// Whether `c` breaks a line or a layout: a C0 or C1 control (tab, newline, carriage return and
/// ESC included) or DEL.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// Whether `c` reorders the text around it (the bidirectional embeddings, overrides and
/// isolates), which on a terminal can make a line read differently from what it holds.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every character for which `bad` holds replaced by `replace(c)`; borrowed when there
/// is none.
fn replace_chars<'a>(
    s: Cow<'a, str>,
    bad: impl Fn(char) -> bool,
    replace: impl Fn(char, &mut String),
) -> Cow<'a, str> {
    if !s.chars().any(&bad) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            replace(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Tab, newline and carriage return: shown as a space wherever they would break a line.
fn is_line_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
}

/// A name as drawn in a picture: at most [`PICTURE_MAX_CHARS`] characters; tab, newline and
/// carriage return become a space, any other control character U+FFFD (�).
pub fn for_picture(s: &str) -> Cow<'_, str> {
    picture_text(s, PICTURE_MAX_CHARS)
}

/// A whole line drawn in a picture (a title): as [`for_picture`], cut at
/// [`PICTURE_LINE_MAX_CHARS`].
pub fn for_picture_line(s: &str) -> Cow<'_, str> {
    picture_text(s, PICTURE_LINE_MAX_CHARS)
}

fn picture_text(s: &str, max_chars: usize) -> Cow<'_, str> {
    replace_chars(truncate(s, max_chars), is_control, |c, out| {
        out.push(if is_line_space(c) { ' ' } else { '\u{fffd}' });
    })
}

/// A name as printed on a terminal line: at most [`TERMINAL_MAX_CHARS`] characters (before
/// escaping); tab, newline and carriage return become a space, and every other control character
/// (ESC, and with it every ANSI escape sequence; the C1 controls such as CSI) and every
/// bidirectional control is shown as a Rust escape such as `\u{1b}`, so nothing a name holds can
/// move the cursor, change colours or reorder the line.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    replace_chars(
        truncate(s, TERMINAL_MAX_CHARS),
        |c| is_control(c) || is_bidi_control(c),
        |c, out| {
            if is_line_space(c) {
                out.push(' ');
            } else {
                out.extend(c.escape_unicode());
            }
        },
    )
}

/// A text as the content of a markdown (GitHub table) cell: at most [`MARKDOWN_MAX_CHARS`]
/// characters (before escaping); `\`, `|`, `` ` ``, `*`, `[`, `]` get a backslash, and so does
/// `_` unless it stands between two letters or digits (where it cannot start or end emphasis, so
/// `mnist_cnn` stays as it is); `<` and `&` become `&lt;` and `&amp;` (no HTML tag or entity);
/// tab, newline and carriage return become a space (a table row is one line) and any other
/// control character U+FFFD.
pub fn for_markdown_cell(s: &str) -> Cow<'_, str> {
    let s = truncate(s, MARKDOWN_MAX_CHARS);
    let special = |c: char| {
        is_control(c) || matches!(c, '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '&')
    };
    if !s.chars().any(special) {
        return s;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match c {
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '_' if word(i.checked_sub(1)) && word(Some(i + 1)) => out.push('_'),
            c if is_line_space(c) => out.push(' '),
            c if is_control(c) => out.push('\u{fffd}'),
            c if special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A text as an inline code span in a markdown (GitHub table) cell, fences included: at most
/// [`MARKDOWN_MAX_CHARS`] characters; the fence is one backtick longer than the longest run of
/// backticks inside (CommonMark has no escapes in code spans), with a space inside it when the
/// text starts or ends with a backtick; `|` becomes `\|` (GitHub splits cells before it reads
/// code spans); tab, newline and carriage return become a space and any other control character
/// U+FFFD.
pub fn for_markdown_code(s: &str) -> String {
    let body = picture_text(s, MARKDOWN_MAX_CHARS).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters() {
        let cases: [(&str, usize, &str, &str); 8] = [
            ("abc", 3, "abc", "exactly at the limit"),
            (
                "abcd",
                3,
                "ab…",
                "one over: two characters and the ellipsis",
            ),
            ("", 3, "", "empty"),
            ("ab", 0, "", "no room at all"),
            ("ab", 1, "…", "room for the ellipsis only"),
            ("ééé", 3, "ééé", "multibyte at the limit (6 bytes)"),
            ("éééé", 3, "éé…", "multibyte cut on a character boundary"),
            ("日本語テキスト", 4, "日本語…", "three-byte characters"),
        ];
        for (s, max, want, msg) in cases {
            assert_eq!(truncate(s, max), want, "{msg}");
            assert!(truncate(s, max).chars().count() <= max, "{msg}");
        }
        assert!(
            matches!(truncate("short", 40), Cow::Borrowed("short")),
            "a text that fits is borrowed"
        );
    }

    #[test]
    fn a_huge_name_is_cut_quickly() {
        let huge = "x".repeat(200_000);
        let cut = for_picture(&huge);
        assert_eq!(cut.chars().count(), PICTURE_MAX_CHARS);
        assert!(cut.ends_with(ELLIPSIS));
        assert_eq!(for_terminal(&huge).chars().count(), TERMINAL_MAX_CHARS);
        assert_eq!(for_markdown_cell(&huge).chars().count(), MARKDOWN_MAX_CHARS);
    }

    #[test]
    fn pictures_get_no_control_characters() {
        let cases = [
            ("cat", "cat", "plain"),
            ("a\tb\nc\rd", "a b c d", "line breaks become spaces"),
            ("red\u{1b}[31m", "red\u{fffd}[31m", "ESC becomes U+FFFD"),
            ("x\u{7f}\u{9b}y", "x\u{fffd}\u{fffd}y", "DEL and CSI (C1)"),
        ];
        for (s, want, msg) in cases {
            assert_eq!(for_picture(s), want, "{msg}");
        }
        assert_eq!(
            for_picture_line(&"y".repeat(1000)).chars().count(),
            PICTURE_LINE_MAX_CHARS
        );
    }

    #[test]
    fn terminal_lines_cannot_be_taken_over() {
        let cases = [
            ("mnist_cnn", "mnist_cnn", "plain"),
            (
                "\u{1b}[2J\u{1b}]0;title\u{7}x",
                "\\u{1b}[2J\\u{1b}]0;title\\u{7}x",
                "ESC sequences (CSI, OSC) and BEL are shown, not obeyed",
            ),
            ("a\u{9b}31m", "a\\u{9b}31m", "the one-character C1 CSI"),
            ("a\r\nb\tc", "a  b c", "line breaks and tabs become spaces"),
            (
                "abc\u{202e}fed",
                "abc\\u{202e}fed",
                "a right-to-left override",
            ),
            ("naïve", "naïve", "non-ASCII letters stay"),
        ];
        for (s, want, msg) in cases {
            assert_eq!(for_terminal(s), want, "{msg}");
        }
        let at_limit = "é".repeat(TERMINAL_MAX_CHARS);
        assert_eq!(for_terminal(&at_limit), at_limit, "exactly at the limit");
    }

    #[test]
    fn markdown_cells_stay_one_cell() {
        let cases = [
            (
                "mnist_cnn",
                "mnist_cnn",
                "an underscore inside a word stays",
            ),
            (
                "_x_ a_ _",
                "\\_x\\_ a\\_ \\_",
                "other underscores are escaped",
            ),
            ("a|b", "a\\|b", "a pipe does not end the cell"),
            ("one\ntwo\r\n", "one two  ", "a row stays on one line"),
            ("c:\\x", "c:\\\\x", "backslash"),
            (
                "`x` *y* [z]",
                "\\`x\\` \\*y\\* \\[z\\]",
                "code, emphasis, link",
            ),
            ("<b>&amp;", "&lt;b>&amp;amp;", "no HTML"),
            ("\u{1b}[1m", "\u{fffd}\\[1m", "ESC"),
        ];
        for (s, want, msg) in cases {
            assert_eq!(for_markdown_cell(s), want, "{msg}");
        }
    }

    #[test]
    fn markdown_code_spans_pick_their_fence() {
        let cases = [
            ("shuffle=true", "`shuffle=true`", "plain"),
            ("a|b", "`a\\|b`", "pipe"),
            ("a`b", "``a`b``", "a backtick inside"),
            ("`a``", "``` `a`` ```", "backticks at the ends"),
            ("x\ny", "`x y`", "newline"),
        ];
        for (s, want, msg) in cases {
            assert_eq!(for_markdown_code(s), want, "{msg}");
        }
    }
}
