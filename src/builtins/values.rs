//! Reading a builtin's input and making its output: type checks, numbers in the two
//! domains we compute in, checked arithmetic, file chunks, and the text of error messages.

use serde_json::{Number, Value};
use std::fs::File;
use std::io::{self, Read};

/// How many characters of a value an error message shows.
pub(super) const SHOWN_CHARS: usize = 80;

/// Chunk size of the streaming file builtins.
pub(super) const CHUNK: usize = 64 * 1024;

/// "string \"abc\"", "number 1.5", "null", ... for error messages, cut to [`SHOWN_CHARS`].
pub(super) fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("{kind} {}", shown(v))
}

/// Compact JSON of `v`, cut to [`SHOWN_CHARS`] characters. Serializes into a bounded
/// buffer so a huge input does not get fully rendered just for an error message.
pub(super) fn shown(v: &Value) -> String {
    /// Collects bytes up to a limit, then refuses more (which stops serialization).
    struct Bounded(Vec<u8>);
    impl io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            // 4 bytes per char at most, plus one char so we know whether we cut.
            let room = (SHOWN_CHARS + 1) * 4 - self.0.len().min((SHOWN_CHARS + 1) * 4);
            if room == 0 {
                return Err(io::Error::other("enough"));
            }
            let n = buf.len().min(room);
            self.0.extend_from_slice(buf.get(..n).unwrap_or_default());
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut out = Bounded(Vec::new());
    // An error here only means the buffer is full, which is the point.
    let _ = serde_json::to_writer(&mut out, v);
    // A char cut at the very end becomes U+FFFD, but it lies beyond SHOWN_CHARS.
    let text = String::from_utf8_lossy(&out.0);
    if text.chars().count() > SHOWN_CHARS {
        let mut cut: String = text.chars().take(SHOWN_CHARS).collect();
        cut.push('…');
        cut
    } else {
        text.into_owned()
    }
}

/// "NAME expects WHAT, got DESCRIPTION".
pub(super) fn type_error(name: &str, expected: &str, got: &Value) -> String {
    format!("{name} expects {expected}, got {}", describe(got))
}

/// A JSON number split into the two domains we compute in. Integers (whether serde_json
/// stored them as i64 or u64) widen losslessly to i128.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

pub(super) fn num_of(v: &Value) -> Option<Num> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = n.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        n.as_f64().map(Num::Float)
    }
}

pub(super) fn expect_num(name: &str, v: &Value) -> Result<Num, String> {
    num_of(v).ok_or_else(|| type_error(name, "a number", v))
}

/// An integer input; floats (even 3.0) are rejected so nothing is silently rounded.
pub(super) fn expect_int(name: &str, expected: &str, v: &Value) -> Result<i128, String> {
    match num_of(v) {
        Some(Num::Int(i)) => Ok(i),
        _ => Err(type_error(name, expected, v)),
    }
}

pub(super) fn expect_str<'a>(name: &str, v: &'a Value) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| type_error(name, "a string", v))
}

/// An integer result as JSON, if it fits `i64` or `u64`.
pub(super) fn int_value(i: i128) -> Option<Value> {
    if let Ok(small) = i64::try_from(i) {
        Some(Value::from(small))
    } else {
        u64::try_from(i).ok().map(Value::from)
    }
}

/// A float result as JSON, if finite (JSON has no NaN or infinity).
pub(super) fn float_value(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

/// Applies an integer or a float operation, depending on what came in, and checks the
/// result. `call` is how the error message shows the call, e.g. "square(3)".
pub(super) fn arith(
    call: impl Fn() -> String,
    n: Num,
    int_op: impl Fn(i128) -> Option<i128>,
    float_op: impl Fn(f64) -> f64,
) -> Result<Value, String> {
    match n {
        Num::Int(i) => int_op(i)
            .and_then(int_value)
            .ok_or_else(|| format!("overflow: {} does not fit in a 64-bit integer", call())),
        Num::Float(f) => float_value(float_op(f))
            .ok_or_else(|| format!("overflow: {} is not a finite number", call())),
    }
}

/// One-argument arithmetic builtins share everything but the operations.
pub(super) fn unary(
    name: &str,
    v: &Value,
    int_op: impl Fn(i128) -> Option<i128>,
    float_op: impl Fn(f64) -> f64,
) -> Result<Value, String> {
    let n = expect_num(name, v)?;
    arith(|| format!("{name}({})", shown(v)), n, int_op, float_op)
}

/// Reads a file in [`CHUNK`]-sized pieces, handing each to `each`. Errors name the path
/// and carry the OS error.
pub(super) fn for_each_chunk(
    name: &str,
    v: &Value,
    mut each: impl FnMut(&[u8]),
) -> Result<(), String> {
    let path = v
        .as_str()
        .ok_or_else(|| type_error(name, "a path string", v))?;
    if path.is_empty() {
        return Err(format!("{name} expects a path, got an empty string"));
    }
    let fail = |e: io::Error| format!("cannot read `{path}`: {e}");
    let mut file = File::open(path).map_err(fail)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => each(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// A number as f64, for mixed integer/float arithmetic (rounds integers beyond 2^53,
/// as any float arithmetic would).
pub(super) fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}
