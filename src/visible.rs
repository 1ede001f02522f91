//! Text about items made safe to print. An item's input, error or stderr excerpt may hold
//! control characters (a colour code, a title or clipboard escape, a carriage return) that
//! would drive the user's terminal, and land in cron mail the same way; everything runjobs
//! itself prints about items shows them as escapes (`\x1b`, `\r`) instead. The results
//! files keep the raw text (JSON-escaped). The live relay of a worker's own stderr is not
//! this: it stays as the program wrote it, as GNU parallel's does.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with its control characters but tabs and newlines escaped (a multi-line error
/// stays lines).
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// `text` on one line: newlines escaped too (an input, a name).
pub fn visible_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let kept = |c: char| c == '\t' || (keep_newlines && c == '\n');
    if !text.chars().any(|c| c.is_control() && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !c.is_control() || kept(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_escapes_and_plain_text_is_left_alone() {
        assert!(matches!(visible("plain\ttext\nline"), Cow::Borrowed(_)));
        assert_eq!(
            visible("\u{1b}[31mred\u{1b}]0;title\u{7}\r\n"),
            "\\x1b[31mred\\x1b]0;title\\x07\\r\n"
        );
        assert_eq!(visible_line("a\nb\u{7f}\u{9b}c é"), "a\\nb\\x7f\\x9bc é");
    }
}
