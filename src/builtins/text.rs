//! Text builtins: `print_number`, `format`, `upper`, `lower`, `len`, `sha256`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Options;
use super::values::*;

pub(super) fn print_number(v: &Value, _: &Options) -> Result<Value, String> {
    let text = match expect_num("print_number", v)? {
        Num::Int(i) => i.to_string(),
        Num::Float(f) => python_float_repr(f),
    };
    Ok(Value::String(format!("Process {text}: {text}")))
}

/// Formats a float the way Python's `repr`/f-strings do, so `print_number` matches
/// `f"Process {number}: {number}"` exactly: shortest round-trip digits, fixed notation
/// with a trailing ".0" when the decimal exponent is in -4..=15, otherwise scientific
/// with a signed, at least two-digit exponent ("1e+16", "1.5e-05").
pub(super) fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.2345e-5". When two
    // digit strings of that length are equally close (the exact value ends in 5), Rust
    // rounds up but Python rounds half to even; exact formatting at the same precision
    // rounds half to even, so redo it that way (87829832555702.125 -> "...702.12").
    let shortest = format!("{:e}", f.abs());
    let precision = shortest
        .split_once('e')
        .map_or(0, |(m, _)| m.len().saturating_sub(2));
    let even = format!("{:.precision$e}", f.abs());
    let sci = if even.parse::<f64>() == Ok(f.abs()) {
        even
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let body = if (-4..=15).contains(&exp) {
        if exp >= 0 {
            // Integer part is the first exp+1 digits, padded with zeros if fewer.
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            let mut int_part: String = digits.chars().take(int_len).collect();
            while int_part.len() < int_len {
                int_part.push('0');
            }
            let frac: String = digits.chars().skip(int_len).collect();
            let frac = if frac.is_empty() {
                "0".to_string()
            } else {
                frac
            };
            format!("{int_part}.{frac}")
        } else {
            let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
            format!("0.{zeros}{digits}")
        }
    } else {
        let mut chars = digits.chars();
        let first = chars.next().unwrap_or('0');
        let rest: String = chars.collect();
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{dot}{rest}e{exp_sign}{:02}", exp.unsigned_abs())
    };
    format!("{sign}{body}")
}

pub(super) fn format(v: &Value, options: &Options) -> Result<Value, String> {
    let template = options
        .template
        .as_deref()
        .ok_or("format needs a `template` option, e.g. template = \"item {input}\"".to_string())?;
    let pieces = parse_template(template)?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Input => out.push_str(&as_text(v)),
            Piece::Field(key) => {
                let obj = v.as_object().ok_or_else(|| {
                    format!(
                        "format: placeholder {{input.{key}}} needs an object input, got {}",
                        describe(v)
                    )
                })?;
                let field = obj.get(key).ok_or_else(|| {
                    format!(
                        "format: input has no key `{key}` (placeholder {{input.{key}}}); keys: {}",
                        key_list(obj)
                    )
                })?;
                out.push_str(&as_text(field));
            }
        }
    }
    Ok(Value::String(out))
}

/// A piece of a parsed `format` template.
#[derive(Debug, PartialEq)]
pub(super) enum Piece<'a> {
    Text(&'a str),
    Input,
    /// `{input.KEY}`: KEY is taken literally (no nesting), so keys may contain dots.
    Field(&'a str),
}

/// Splits a template into text and placeholders. `{{` and `}}` are literal braces; any
/// other brace must be part of `{input}` or `{input.KEY}`.
pub(super) fn parse_template(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let (text, tail) = rest.split_at(i);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("format: unclosed `{{` in template {:?}", template))?;
            let (inner, after) = after.split_at(end);
            pieces.push(match inner.strip_prefix("input") {
                Some("") => Piece::Input,
                Some(field) => match field.strip_prefix('.') {
                    Some(key) if !key.is_empty() && !key.contains('{') => Piece::Field(key),
                    _ => return Err(unknown_placeholder(inner)),
                },
                None => return Err(unknown_placeholder(inner)),
            });
            rest = after.get(1..).unwrap_or_default();
        } else {
            return Err(format!(
                "format: single `}}` in template {:?} (write `}}}}` for a literal brace)",
                template
            ));
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

pub(super) fn unknown_placeholder(inner: &str) -> String {
    format!(
        "format: unknown placeholder {{{inner}}}; expected {{input}} or {{input.KEY}} \
         (write {{{{ and }}}} for literal braces)"
    )
}

/// A value as template text: strings as-is, anything else as compact JSON.
pub(super) fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn key_list(obj: &Map<String, Value>) -> String {
    if obj.is_empty() {
        return "none".to_string();
    }
    let keys: Vec<String> = obj.keys().map(|k| format!("`{k}`")).collect();
    let list = keys.join(", ");
    if list.chars().count() > SHOWN_CHARS {
        let mut cut: String = list.chars().take(SHOWN_CHARS).collect();
        cut.push('…');
        cut
    } else {
        list
    }
}

pub(super) fn upper(v: &Value, _: &Options) -> Result<Value, String> {
    Ok(Value::String(expect_str("upper", v)?.to_uppercase()))
}

pub(super) fn lower(v: &Value, _: &Options) -> Result<Value, String> {
    Ok(Value::String(expect_str("lower", v)?.to_lowercase()))
}

pub(super) fn len(v: &Value, _: &Options) -> Result<Value, String> {
    let n = match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        other => return Err(type_error("len", "a string, array or object", other)),
    };
    Ok(Value::from(n))
}

pub(super) fn sha256(v: &Value, _: &Options) -> Result<Value, String> {
    let s = expect_str("sha256", v)?;
    Ok(Value::String(hex(&Sha256::digest(s.as_bytes()))))
}
