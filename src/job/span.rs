//! Positions in the job file's text: JSON-pointer-like key paths → byte spans → `line:col`,
//! and the `Diagnostic` built at such a position.
//!
//! Spans come from `toml::de::DeTable` (cargo's `get_key_value_span` idea). This module knows
//! TOML's shape but not the schema or what any key means; it never decides what is an error.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, Snippet};

/// Which part of a `key = value` pair a diagnostic points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The key: for unknown or misplaced keys.
    Key,
    /// The value: for bad values, and for a table that lacks something (its header).
    Value,
}

/// Spans of the member a pointer names. `key` is `None` for array elements and the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
}

/// Spans for a pointer given as unescaped segments, e.g. `["task", "0", "workers"]`; `None` when
/// it goes through something absent or a scalar.
pub fn pointer_span(root: &Spanned<DeTable<'_>>, segments: &[&str]) -> Option<Found> {
    walk(root, segments).map(|(found, _)| found)
}

/// `pointer_span`, plus whether the member is an array.
fn walk(root: &Spanned<DeTable<'_>>, segments: &[&str]) -> Option<(Found, bool)> {
    let mut found = Found {
        key: None,
        value: root.span(),
    };
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
    for seg in segments {
        let value: &Spanned<DeValue<'_>> = match (table, array) {
            (Some(t), _) => {
                let (k, v) = t.get_key_value(*seg)?;
                found.key = Some(k.span());
                v
            }
            (None, Some(a)) => {
                found.key = None;
                a.get(seg.parse::<usize>().ok()?)?
            }
            (None, None) => return None, // the pointer goes through a scalar
        };
        found.value = value.span();
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(&a[..])),
            _ => (None, None),
        };
    }
    Some((found, array.is_some()))
}

/// 1-based line and column (column counted in chars) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key path users read: `task[0].inputs.range`, and TOML quoting for keys that are
/// not bare. What a user reads counts one way: a bracket is a 0-based index (as a result's
/// `index`, `{index}`, `name[3]` in the failure list and the schema's paths are); a task is
/// always named by its path, `task[0]` for the first `[[task]]` (see `task_ref`).
/// How every message names the `[[task]]` at 0-based position `index`: "`task[1]`", the
/// key path `= key:` lines show, never a count from 1.
pub fn task_ref(index: impl std::fmt::Display) -> String {
    format!("`task[{index}]`")
}

pub fn key_path(segments: &[&str], is_index: impl Fn(usize) -> bool) -> String {
    let mut out = String::new();
    for (i, seg) in segments.iter().enumerate() {
        match seg.parse::<usize>() {
            Ok(n) if is_index(i) => out.push_str(&format!("[{n}]")),
            _ => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(seg);
                } else {
                    out.push_str(&format!("{seg:?}"));
                }
            }
        }
    }
    out
}

/// The job file's text and spans; makes diagnostics that point into it.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub doc: Spanned<DeTable<'a>>,
}

impl Source<'_> {
    /// A diagnostic at `segments` (a key path as unescaped pointer segments). When the path is
    /// absent (a key that was never written) it points at the nearest written ancestor.
    pub fn diag(&self, segments: &[&str], at: At, message: impl Into<String>) -> Diagnostic {
        let (found, depth) = self.nearest(segments);
        let span = match (at, found.key) {
            (At::Key, Some(k)) if depth == segments.len() => k,
            _ => found.value,
        };
        let mut d = self.at_span(span, message);
        d.key = self.key(segments);
        if depth == 0 {
            d.snippet = None; // the whole document has no one line worth showing
        }
        d
    }

    /// A diagnostic at `part` (a byte range) of the string `value` written at `segments`, e.g.
    /// one placeholder of a command argument. Points into the string when it is written
    /// without escapes (so its text is `value` itself); otherwise at the whole value.
    pub fn diag_in_string(
        &self,
        segments: &[&str],
        value: &str,
        part: Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let found = pointer_span(&self.doc, segments);
        let inner = found.and_then(|f| {
            let raw = self.text.get(f.value.clone())?;
            let quote = raw.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            // A one-line string holding exactly `value`: no escapes, no multi-line quotes.
            let body = raw.strip_prefix(quote)?.strip_suffix(quote)?;
            let start = f.value.start + quote.len_utf8() + part.start;
            let end = f.value.start + quote.len_utf8() + part.end;
            (body == value && value.get(part.clone()).is_some()).then_some(start..end)
        });
        let Some(span) = inner else {
            return self.diag(segments, At::Value, message);
        };
        let mut d = self.at_span(span, message);
        d.key = self.key(segments);
        d
    }

    /// The dotted key path of `segments`, e.g. `task[0].inputs.range`.
    pub fn key(&self, segments: &[&str]) -> String {
        let depth = self.nearest(segments).1;
        // Segment i is an array index when the written prefix before it is an array; past
        // what was written, a number can only be an index.
        let is_index = |i: usize| walk(&self.doc, &segments[..i]).map_or(i > depth, |(_, a)| a);
        key_path(segments, is_index)
    }

    /// The spans of the longest written prefix of `segments`, and its length.
    fn nearest(&self, segments: &[&str]) -> (Found, usize) {
        (0..=segments.len())
            .rev()
            .find_map(|n| pointer_span(&self.doc, &segments[..n]).map(|f| (f, n)))
            .expect("the empty pointer always resolves to the root")
    }

    /// A diagnostic at a byte span (e.g. a TOML syntax error), underlining it on its first line.
    pub fn at_span(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = line_col(self.text, span.start);
        let text = self.text.lines().nth(line - 1).unwrap_or("");
        let start = col - 1;
        let wanted = self.text.get(span.clone()).map_or(1, |s| s.chars().count());
        let len = wanted.clamp(1, text.chars().count().saturating_sub(start).max(1));
        let snippet = Some(Snippet {
            text: text.to_string(),
            start,
            len,
        });
        Diagnostic {
            line,
            col,
            snippet,
            ..Diagnostic::file(self.path, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"#:schema ../schemas/job.schema.json
name = "demo"
workers = 2

[output]
path = "out/{job}.json"
format = "json"

[functions.greet]
builtin = "format"
template = "Hello {input}"

[[task]]
function = "square"
inputs = [1, 2, 3]

[[task]]
name = "hi"
function = "greet"
workers = 4
inputs = { matrix = { x = [1, 2], "y/z" = ["a"] } }
timeout = """
10s"""
"#;

    fn locate(src: &str, pointer: &str) -> Option<(usize, usize, usize, usize)> {
        let doc = DeTable::parse(src).expect("test TOML parses");
        let segs: Vec<String> = if pointer.is_empty() {
            vec![]
        } else {
            pointer[1..]
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect()
        };
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let f = pointer_span(&doc, &segs)?;
        let (kl, kc) = line_col(src, f.key.map_or(f.value.start, |k| k.start));
        let (vl, vc) = line_col(src, f.value.start);
        Some((kl, kc, vl, vc))
    }

    #[test]
    fn pointer_to_key_and_value_positions() {
        let table = [
            ("", Some((1, 1, 1, 1))),
            ("/name", Some((2, 1, 2, 8))),
            ("/output/format", Some((7, 1, 7, 10))),
            ("/functions/greet", Some((9, 12, 9, 1))),
            ("/functions/greet/template", Some((11, 1, 11, 12))),
            ("/task/0", Some((13, 1, 13, 1))),
            ("/task/0/inputs/2", Some((15, 17, 15, 17))),
            ("/task/1/workers", Some((20, 1, 20, 11))),
            ("/task/1/inputs/matrix/x/1", Some((21, 31, 21, 31))),
            ("/task/1/inputs/matrix/y~1z", Some((21, 35, 21, 43))),
            ("/task/1/timeout", Some((22, 1, 22, 11))),
            ("/task/0/workers", None),
            ("/task/2", None),
            ("/name/x", None),
            ("/nope", None),
        ];
        for (pointer, want) in table {
            assert_eq!(locate(SAMPLE, pointer), want, "pointer {pointer:?}");
        }
    }

    #[test]
    fn line_col_counts_chars_and_survives_bad_offsets() {
        let src = "a = \"é\"\nbé = 1\r\nc = 2";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, src.find("= 1").unwrap_or(0)), (2, 4));
        assert_eq!(line_col(src, src.find("c =").unwrap_or(0)), (3, 1));
        assert_eq!(line_col(src, 6), (1, 6)); // inside `é`: snapped back to its start
        assert_eq!(line_col(src, 10_000), (3, 6));
    }

    #[test]
    fn key_paths_are_dotted_and_one_based() {
        let src = Source {
            path: Path::new("j.toml"),
            text: SAMPLE,
            doc: DeTable::parse(SAMPLE).expect("parses"),
        };
        let d = src.diag(&["task", "1", "inputs", "matrix", "y/z"], At::Key, "m");
        assert_eq!(
            (d.key.as_str(), d.line, d.col),
            ("task[1].inputs.matrix.\"y/z\"", 21, 35)
        );
        let d = src.diag(&["task", "0", "retries"], At::Value, "m");
        assert_eq!((d.key.as_str(), d.line, d.col), ("task[0].retries", 13, 1));
        let snippet = d.snippet.expect("a task header has a line");
        assert_eq!((snippet.text.as_str(), snippet.len), ("[[task]]", 8));
        let d = src.diag(&[], At::Value, "m");
        assert_eq!((d.line, d.col, d.snippet), (1, 1, None));
    }

    #[test]
    fn diagnostics_point_inside_strings_written_without_escapes() {
        let text = "a = [\"x\", \"in/{inpt}.png\"]\nb = 'lit {c}'\nc = \"esc\\\"{d}\"\n";
        let src = Source {
            path: Path::new("j.toml"),
            text,
            doc: DeTable::parse(text).expect("parses"),
        };
        let d = src.diag_in_string(&["a", "1"], "in/{inpt}.png", 3..9, "m");
        let snippet = d.snippet.expect("a line");
        assert_eq!((d.line, d.col, snippet.len), (1, 15, 6));
        assert_eq!(d.key, "a[1]");
        let d = src.diag_in_string(&["b"], "lit {c}", 4..7, "m");
        assert_eq!((d.line, d.col), (2, 10));
        // An escape shifts positions: point at the whole string instead.
        let d = src.diag_in_string(&["c"], "esc\"{d}", 4..7, "m");
        assert_eq!((d.line, d.col), (3, 5));
    }
}
