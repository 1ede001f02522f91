//! JSON text → TOML text for one value, without building either tree: what lets the TOML
//! writer stream a million records. Objects become inline tables, so a record stays one line
//! (`{ index = 0, input = 1, status = "ok", … }`); nulls are left out, as TOML has none.
//!
//! The input is JSON that runjobs rendered or checked (records, headers), so a malformed
//! text is an error, never a guess.

use std::borrow::Cow;
use std::io;

/// Appends the TOML form of the JSON value `json` to `out`. A top-level `null` writes
/// nothing and returns `false` (the caller leaves its key out).
pub fn write_value(json: &[u8], out: &mut Vec<u8>) -> io::Result<bool> {
    let mut reader = Reader { json, at: 0 };
    let written = reader.value(out)?;
    reader.skip_space();
    if reader.at != json.len() {
        return Err(reader.error("text after the value"));
    }
    Ok(written)
}

/// Appends the members of the JSON object `json` as `key = value` lines (nulls left out):
/// a table's own keys, before its sub-tables.
pub fn write_members(json: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut reader = Reader { json, at: 0 };
    reader.expect(b'{')?;
    reader.each_until(b'}', |reader| {
        let key = reader.key()?;
        reader.expect(b':')?;
        let mark = out.len();
        write_key(&key, out);
        out.extend_from_slice(b" = ");
        if reader.value(out)? {
            out.push(b'\n');
        } else {
            out.truncate(mark);
        }
        Ok(())
    })
}

/// Appends `key` (UTF-8 text) as a TOML key: bare when it can be, else quoted.
fn write_key(key: &[u8], out: &mut Vec<u8>) {
    let bare = !key.is_empty()
        && key
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    if bare {
        out.extend_from_slice(key);
    } else {
        write_string(&String::from_utf8_lossy(key), out);
    }
}

/// Appends `text` as a TOML basic string.
pub fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

struct Reader<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot write a record as TOML: {what} at byte {}", self.at),
        )
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.json.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.json.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> io::Result<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    /// Writes the value here; `false` for a null (nothing written).
    fn value(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        match self.peek() {
            Some(b'{') => self.container(out, true)?,
            Some(b'[') => self.container(out, false)?,
            Some(b'"') => match self.plain_string()? {
                Some(text) => {
                    out.push(b'"');
                    out.extend_from_slice(text);
                    out.push(b'"');
                }
                None => write_string(&self.string()?, out),
            },
            Some(b't') => self.word("true", out)?,
            Some(b'f') => self.word("false", out)?,
            Some(b'n') => {
                self.literal("null")?;
                return Ok(false);
            }
            Some(b'-' | b'0'..=b'9') => self.number(out)?,
            _ => return Err(self.error("expected a value")),
        }
        Ok(true)
    }

    fn literal(&mut self, word: &str) -> io::Result<()> {
        if self.json[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn word(&mut self, word: &str, out: &mut Vec<u8>) -> io::Result<()> {
        self.literal(word)?;
        out.extend_from_slice(word.as_bytes());
        Ok(())
    }

    /// Calls `each` for every element up to the `close` bracket (the opening one is read),
    /// reading the commas between them.
    fn each_until(
        &mut self,
        close: u8,
        mut each: impl FnMut(&mut Self) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            each(self)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b) if b == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error(&format!("expected `,` or `{}`", close as char))),
            }
        }
    }

    /// An object as an inline table (`{ a = 1, b = 2 }`, `{}`) or an array (`[1, 2]`); a
    /// null member or element is left out.
    fn container(&mut self, out: &mut Vec<u8>, object: bool) -> io::Result<()> {
        let (open, close) = if object { (b'{', b'}') } else { (b'[', b']') };
        self.expect(open)?;
        out.push(open);
        let mut written = 0;
        self.each_until(close, |reader| {
            let mark = out.len();
            let separator: &[u8] = match (written, object) {
                (0, true) => b" ",
                (0, false) => b"",
                _ => b", ",
            };
            out.extend_from_slice(separator);
            if object {
                let key = reader.key()?;
                reader.expect(b':')?;
                write_key(&key, out);
                out.extend_from_slice(b" = ");
            }
            if reader.value(out)? {
                written += 1;
            } else {
                out.truncate(mark);
            }
            Ok(())
        })?;
        if object && written > 0 {
            out.push(b' ');
        }
        out.push(close);
        Ok(())
    }

    /// A member's key.
    fn key(&mut self) -> io::Result<Cow<'a, [u8]>> {
        match self.plain_string()? {
            Some(text) => Ok(Cow::Borrowed(text)),
            None => self.string().map(|s| Cow::Owned(s.into_bytes())),
        }
    }

    /// The string here when it is the same text in TOML (no escapes, no DEL), consumed; else
    /// `None`, consuming nothing. Most strings of a record are: no copy, no allocation.
    fn plain_string(&mut self) -> io::Result<Option<&'a [u8]>> {
        self.expect(b'"')?;
        let json = self.json;
        let start = self.at;
        let rest = &json[start..];
        match memchr::memchr3(b'"', b'\\', 0x7f, rest) {
            Some(end) if rest[end] == b'"' => {
                self.at = start + end + 1;
                Ok(Some(&json[start..start + end]))
            }
            _ => {
                self.at = start - 1;
                Ok(None)
            }
        }
    }

    /// A JSON string, unescaped.
    fn string(&mut self) -> io::Result<String> {
        self.expect(b'"')?;
        let mut bytes = Vec::new();
        loop {
            let start = self.at;
            while let Some(&b) = self.json.get(self.at) {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.at += 1;
            }
            bytes.extend_from_slice(&self.json[start..self.at]);
            match self.json.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.json.get(self.at).copied();
                    self.at += 1;
                    let c = match escaped {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("a bad escape in a string")),
                    };
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => return Err(self.error("an unterminated string")),
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error("a string that is not UTF-8"))
    }

    /// The char of a `\uXXXX` (after the `u`), joining a surrogate pair; a lone surrogate
    /// (which JSON allows and Unicode does not) becomes U+FFFD.
    fn unicode_escape(&mut self) -> io::Result<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return Ok(char::from_u32(high).unwrap_or('\u{FFFD}'));
        }
        if self.json[self.at..].starts_with(b"\\u") {
            let back = self.at;
            self.at += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.at = back;
        }
        Ok('\u{FFFD}')
    }

    fn hex4(&mut self) -> io::Result<u32> {
        let digits = self
            .json
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("a bad `\\u` escape"))?;
        self.at += 4;
        Ok(digits)
    }

    /// JSON number text is TOML number text, except integers beyond i64 (TOML's range):
    /// those keep their digits as a string, however long (never rounded to a float).
    fn number(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.json.get(self.at) {
            self.at += 1;
        }
        let bytes = &self.json[start..self.at];
        let exponent = bytes.iter().any(|b| matches!(b, b'e' | b'E'));
        let fraction = bytes.contains(&b'.');
        // `1.25` (every record's times) and integers of up to 18 digits: the same text in
        // TOML, with no overflow possible; only the rest is parsed.
        if !exponent && (fraction || bytes.len() <= 18) {
            out.extend_from_slice(bytes);
            return Ok(());
        }
        let text = std::str::from_utf8(bytes).expect("ASCII digits");
        if !fraction && !exponent {
            if text.parse::<i64>().is_ok() {
                out.extend_from_slice(bytes);
            } else if is_integer(text) {
                write_string(text, out);
            } else {
                return Err(self.error("a bad number"));
            }
        } else {
            let f: f64 = text.parse().map_err(|_| self.error("a bad number"))?;
            write_float(f, out);
        }
        Ok(())
    }
}

/// Whether `text` is a JSON integer: an optional `-`, then digits.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A float as TOML writes it: always with a `.` or an exponent, so it stays a float.
fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"inf" } else { b"-inf" });
    } else {
        // Debug always writes a `.` or an exponent, and the shortest digits that round-trip.
        out.extend_from_slice(format!("{f:?}").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn toml_of(value: &Value) -> String {
        let mut out = b"x = ".to_vec();
        let text = serde_json::to_string(value).unwrap();
        if !write_value(text.as_bytes(), &mut out).unwrap() {
            return String::new();
        }
        String::from_utf8(out).unwrap()
    }

    /// What the TOML text means, as the toml crate reads it.
    fn read_back(text: &str) -> toml::Value {
        let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        table
            .get("x")
            .cloned()
            .unwrap_or(toml::Value::Boolean(false))
    }

    #[test]
    fn records_become_one_line_inline_tables_without_nulls() {
        let record = json!({"index": 0, "input": {"a b": [1, null, "x\"y"]}, "status": "ok",
                            "output": null, "error": "line\nnext\u{7f}", "weird key": {}});
        let text = toml_of(&record);
        assert_eq!(
            text,
            "x = { index = 0, input = { \"a b\" = [1, \"x\\\"y\"] }, status = \"ok\", \
             error = \"line\\nnext\\u007F\", \"weird key\" = {} }"
        );
        assert!(!text[4..].contains('\n'));
    }

    #[test]
    fn numbers_keep_their_type_and_digits() {
        assert_eq!(
            toml_of(&json!(-9223372036854775808i64)),
            "x = -9223372036854775808"
        );
        assert_eq!(
            toml_of(&json!(18446744073709551615u64)),
            "x = \"18446744073709551615\""
        );
        assert_eq!(read_back(&toml_of(&json!(1.0))), toml::Value::Float(1.0));
        assert_eq!(
            read_back(&toml_of(&json!(1e300))),
            toml::Value::Float(1e300)
        );
        let mut out = Vec::new();
        write_value(b"1e400", &mut out).unwrap();
        assert_eq!(out, b"inf");
    }

    /// `2**80` from Python was written as the float `1.2089258196146292e24`.
    #[test]
    fn integers_beyond_64_bits_keep_every_digit_as_text() {
        for digits in [
            "1208925819614629174706176",
            "-1208925819614629174706176",
            "-9223372036854775809",
            "123456789012345678901234567890123456789012345678901234567890",
        ] {
            let mut out = Vec::new();
            write_value(digits.as_bytes(), &mut out).unwrap();
            let text = format!("x = {}", String::from_utf8(out).unwrap());
            assert_eq!(read_back(&text), toml::Value::String(digits.into()));
        }
        for bad in [&b"12345678901234567890-1"[..], b"-1234567890123456789012+"] {
            assert!(write_value(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escapes_that_toml_lacks_are_turned_into_ones_it_has() {
        let mut out = Vec::new();
        write_value(br#""a\/b \ud83d\ude00 \ud800 \u00e9""#, &mut out).unwrap();
        let text = format!("x = {}", String::from_utf8(out).unwrap());
        assert_eq!(
            read_back(&text),
            toml::Value::String("a/b 😀 \u{FFFD} é".into())
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        for bad in [&b"{"[..], b"[1,", b"\"abc", b"{\"a\" 1}", b"1 2", b"nul"] {
            assert!(write_value(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// JSON → TOML through trees (what the TOML writer did before it streamed): the
    /// reference the text must agree with.
    fn json_to_toml(value: Value) -> Option<toml::Value> {
        use toml::Value as Toml;
        Some(match value {
            Value::Null => return None,
            Value::Bool(b) => Toml::Boolean(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Toml::Integer(i),
                None => match n.as_u64() {
                    Some(u) => Toml::String(u.to_string()),
                    None => Toml::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
            },
            Value::String(s) => Toml::String(s),
            Value::Array(items) => {
                Toml::Array(items.into_iter().filter_map(json_to_toml).collect())
            }
            Value::Object(map) => Toml::Table(
                map.into_iter()
                    .filter_map(|(k, v)| json_to_toml(v).map(|v| (k, v)))
                    .collect(),
            ),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::fuzz_cases(500)))]

        /// The text means what the in-memory conversion (`json_to_toml`) makes of the value.
        #[test]
        fn toml_text_reads_back_as_the_tree_conversion(value in json_value()) {
            let text = toml_of(&value);
            match json_to_toml(value) {
                None => prop_assert_eq!(text, ""),
                Some(expected) => prop_assert_eq!(read_back(&text), expected),
            }
        }
    }
}
