//! The builtin functions that runjobs can map over inputs.
//!
//! This module owns the table of builtins (name, input and output type, one-line doc) and
//! their implementations. Each builtin takes one JSON input plus the per-function
//! [`Options`] from the job file and returns a JSON output or an error message.
//!
//! Contract for every builtin:
//! - no IO except what the builtin is defined to do (`sleep` sleeps, the file builtins read
//!   the file they are given); nothing here ever prints;
//! - never panic on user input: wrong types, extreme numbers and odd paths all come back
//!   as `Err` with a message naming the builtin, what it expected and what it got;
//! - never return a wrong number: integer arithmetic is done in `i128` with checked
//!   operations and must fit a 64-bit integer (`i64` or `u64`), float results must be finite.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

/// One builtin function: its name, a short description for `--help`-style listings, and
/// the code that runs it.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    /// Short input type, e.g. "integer", "{a, b}", "path".
    pub input: &'static str,
    /// Short output type.
    pub output: &'static str,
    /// One-line doc.
    pub doc: &'static str,
    run: fn(&Value, &Options) -> Result<Value, String>,
}

/// Per-function options from the job file. Builtins ignore options they do not use.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Template of the `format` builtin.
    pub template: Option<String>,
}

impl Builtin {
    /// Runs the builtin on one input.
    pub fn call(&self, input: &Value, options: &Options) -> Result<Value, String> {
        (self.run)(input, options)
    }
}

/// All builtins, sorted by name (so [`lookup`] can binary-search).
pub fn all() -> &'static [Builtin] {
    BUILTINS
}

/// The builtin called `name`, if any.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS
        .binary_search_by(|b| b.name.cmp(name))
        .ok()
        .and_then(|i| BUILTINS.get(i))
}

/// Names of all builtins, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

/// The one table of builtins. Keep it sorted by name; a unit test checks that.
static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "add",
        input: "{a, b}",
        output: "number",
        doc: "Adds the numbers `a` and `b` of a table",
        run: add,
    },
    Builtin {
        name: "collatz_steps",
        input: "integer >= 1",
        output: "integer",
        doc: "Number of Collatz steps (n/2 or 3n+1) to reach 1",
        run: collatz_steps,
    },
    Builtin {
        name: "cube",
        input: "number",
        output: "number",
        doc: "n * n * n",
        run: cube,
    },
    Builtin {
        name: "double",
        input: "number",
        output: "number",
        doc: "n * 2",
        run: double,
    },
    Builtin {
        name: "factorize",
        input: "integer >= 1",
        output: "array of integers",
        doc: "Prime factors in ascending order, with repetition (1 gives [])",
        run: factorize,
    },
    Builtin {
        name: "fib",
        input: "integer >= 0",
        output: "integer",
        doc: "The nth Fibonacci number (fib(0) = 0, fib(1) = 1, n <= 93)",
        run: fib,
    },
    Builtin {
        name: "format",
        input: "any",
        output: "string",
        doc: "Renders the `template` option: {input}, {input.KEY}, {{ and }}",
        run: format,
    },
    Builtin {
        name: "identity",
        input: "any",
        output: "any",
        doc: "Returns the input unchanged",
        run: identity,
    },
    Builtin {
        name: "is_prime",
        input: "integer",
        output: "boolean",
        doc: "Whether the integer is prime (deterministic Miller-Rabin)",
        run: is_prime,
    },
    Builtin {
        name: "len",
        input: "string, array or object",
        output: "integer",
        doc: "Characters of a string, elements of an array or keys of an object",
        run: len,
    },
    Builtin {
        name: "line_count",
        input: "path",
        output: "integer",
        doc: "Lines in a file (a final line without newline counts)",
        run: line_count,
    },
    Builtin {
        name: "lower",
        input: "string",
        output: "string",
        doc: "Lowercases a string",
        run: lower,
    },
    Builtin {
        name: "negate",
        input: "number",
        output: "number",
        doc: "-n",
        run: negate,
    },
    Builtin {
        name: "print_number",
        input: "number",
        output: "string",
        doc: "The string \"Process n: n\"",
        run: print_number,
    },
    Builtin {
        name: "sha256",
        input: "string",
        output: "string",
        doc: "Lowercase hex SHA-256 of the string's UTF-8 bytes",
        run: sha256,
    },
    Builtin {
        name: "sha256_file",
        input: "path",
        output: "string",
        doc: "Lowercase hex SHA-256 of a file's content",
        run: sha256_file,
    },
    Builtin {
        name: "sleep",
        input: "seconds",
        output: "same as input",
        doc: "Sleeps that many seconds (0 to one year) and returns the input",
        run: sleep,
    },
    Builtin {
        name: "square",
        input: "number",
        output: "number",
        doc: "n * n",
        run: square,
    },
    Builtin {
        name: "sum",
        input: "array of numbers",
        output: "number",
        doc: "Sum of the numbers ([] gives 0)",
        run: sum,
    },
    Builtin {
        name: "upper",
        input: "string",
        output: "string",
        doc: "Uppercases a string",
        run: upper,
    },
    Builtin {
        name: "word_count",
        input: "path",
        output: "integer",
        doc: "Whitespace-separated words in a file",
        run: word_count,
    },
];

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// How many characters of a value an error message shows.
const SHOWN_CHARS: usize = 80;

/// Chunk size of the streaming file builtins.
const CHUNK: usize = 64 * 1024;

/// "string \"abc\"", "number 1.5", "null", ... for error messages, cut to [`SHOWN_CHARS`].
fn describe(v: &Value) -> String {
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
fn shown(v: &Value) -> String {
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
fn type_error(name: &str, expected: &str, got: &Value) -> String {
    format!("{name} expects {expected}, got {}", describe(got))
}

/// A JSON number split into the two domains we compute in. Integers (whether serde_json
/// stored them as i64 or u64) widen losslessly to i128.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num_of(v: &Value) -> Option<Num> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = n.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        n.as_f64().map(Num::Float)
    }
}

fn expect_num(name: &str, v: &Value) -> Result<Num, String> {
    num_of(v).ok_or_else(|| type_error(name, "a number", v))
}

/// An integer input; floats (even 3.0) are rejected so nothing is silently rounded.
fn expect_int(name: &str, expected: &str, v: &Value) -> Result<i128, String> {
    match num_of(v) {
        Some(Num::Int(i)) => Ok(i),
        _ => Err(type_error(name, expected, v)),
    }
}

fn expect_str<'a>(name: &str, v: &'a Value) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| type_error(name, "a string", v))
}

/// An integer result as JSON, if it fits `i64` or `u64`.
fn int_value(i: i128) -> Option<Value> {
    if let Ok(small) = i64::try_from(i) {
        Some(Value::from(small))
    } else {
        u64::try_from(i).ok().map(Value::from)
    }
}

/// A float result as JSON, if finite (JSON has no NaN or infinity).
fn float_value(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

/// Applies an integer or a float operation, depending on what came in, and checks the
/// result. `call` is how the error message shows the call, e.g. "square(3)".
fn arith(
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
fn unary(
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
fn for_each_chunk(name: &str, v: &Value, mut each: impl FnMut(&[u8])) -> Result<(), String> {
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

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

// ---------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------

fn square(v: &Value, _: &Options) -> Result<Value, String> {
    unary("square", v, |i| i.checked_mul(i), |f| f * f)
}

fn cube(v: &Value, _: &Options) -> Result<Value, String> {
    unary(
        "cube",
        v,
        |i| i.checked_mul(i).and_then(|sq| sq.checked_mul(i)),
        |f| f * f * f,
    )
}

fn double(v: &Value, _: &Options) -> Result<Value, String> {
    unary("double", v, |i| i.checked_mul(2), |f| f * 2.0)
}

fn negate(v: &Value, _: &Options) -> Result<Value, String> {
    // In i128 negating i64::MIN gives 2^63, which fits u64 and is the right answer.
    unary("negate", v, |i| i.checked_neg(), |f| -f)
}

fn identity(v: &Value, _: &Options) -> Result<Value, String> {
    Ok(v.clone())
}

fn add(v: &Value, _: &Options) -> Result<Value, String> {
    const EXPECTED: &str = "a table {a, b} of two numbers";
    let obj = v
        .as_object()
        .ok_or_else(|| type_error("add", EXPECTED, v))?;
    // Unknown keys are refused: a typo like `A = 1` should not silently become an error
    // about a missing `a`, or worse, be ignored.
    if let Some(extra) = obj.keys().find(|k| *k != "a" && *k != "b") {
        return Err(format!(
            "add expects {EXPECTED}, got unexpected key `{extra}`"
        ));
    }
    let operand = |key: &str| -> Result<Num, String> {
        let x = obj
            .get(key)
            .ok_or_else(|| format!("add expects {EXPECTED}, but `{key}` is missing"))?;
        num_of(x).ok_or_else(|| format!("add expects `{key}` to be a number, got {}", describe(x)))
    };
    let (a, b) = (operand("a")?, operand("b")?);
    let call = || {
        format!(
            "add({}, {})",
            obj.get("a").map(shown).unwrap_or_default(),
            obj.get("b").map(shown).unwrap_or_default()
        )
    };
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => arith(call, Num::Int(x), |x| x.checked_add(y), |f| f),
        _ => arith(call, Num::Float(as_f64(a) + as_f64(b)), Some, |f| f),
    }
}

/// A number as f64, for mixed integer/float arithmetic (rounds integers beyond 2^53,
/// as any float arithmetic would).
fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn sum(v: &Value, _: &Options) -> Result<Value, String> {
    const EXPECTED: &str = "an array of numbers";
    let items = v.as_array().ok_or_else(|| type_error("sum", EXPECTED, v))?;
    let mut nums = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = num_of(item).ok_or_else(|| {
            format!(
                "sum expects {EXPECTED}, got {} at index {i}",
                describe(item)
            )
        })?;
        nums.push(n);
    }
    let call = || format!("sum of {} numbers", nums.len());
    if nums.iter().all(|n| matches!(n, Num::Int(_))) {
        // i128 cannot overflow on any realistic array, but check anyway: never wrong.
        let total = nums.iter().try_fold(0i128, |acc, n| match n {
            Num::Int(i) => acc.checked_add(*i),
            Num::Float(_) => None,
        });
        match total {
            Some(t) => arith(call, Num::Int(t), Some, |f| f),
            None => Err(format!(
                "overflow: {} does not fit in a 64-bit integer",
                call()
            )),
        }
    } else {
        let total: f64 = nums.iter().map(|n| as_f64(*n)).sum();
        arith(call, Num::Float(total), Some, |f| f)
    }
}

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

fn print_number(v: &Value, _: &Options) -> Result<Value, String> {
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
fn python_float_repr(f: f64) -> String {
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

fn format(v: &Value, options: &Options) -> Result<Value, String> {
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
enum Piece<'a> {
    Text(&'a str),
    Input,
    /// `{input.KEY}`: KEY is taken literally (no nesting), so keys may contain dots.
    Field(&'a str),
}

/// Splits a template into text and placeholders. `{{` and `}}` are literal braces; any
/// other brace must be part of `{input}` or `{input.KEY}`.
fn parse_template(template: &str) -> Result<Vec<Piece<'_>>, String> {
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

fn unknown_placeholder(inner: &str) -> String {
    format!(
        "format: unknown placeholder {{{inner}}}; expected {{input}} or {{input.KEY}} \
         (write {{{{ and }}}} for literal braces)"
    )
}

/// A value as template text: strings as-is, anything else as compact JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn key_list(obj: &Map<String, Value>) -> String {
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

fn upper(v: &Value, _: &Options) -> Result<Value, String> {
    Ok(Value::String(expect_str("upper", v)?.to_uppercase()))
}

fn lower(v: &Value, _: &Options) -> Result<Value, String> {
    Ok(Value::String(expect_str("lower", v)?.to_lowercase()))
}

fn len(v: &Value, _: &Options) -> Result<Value, String> {
    let n = match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        other => return Err(type_error("len", "a string, array or object", other)),
    };
    Ok(Value::from(n))
}

fn sha256(v: &Value, _: &Options) -> Result<Value, String> {
    let s = expect_str("sha256", v)?;
    Ok(Value::String(hex(&Sha256::digest(s.as_bytes()))))
}

// ---------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------

/// Longest allowed sleep; anything longer is surely a unit mistake.
const MAX_SLEEP_SECS: f64 = 365.0 * 24.0 * 3600.0;

fn sleep(v: &Value, _: &Options) -> Result<Value, String> {
    let expected = "a number of seconds from 0 to 31536000 (one year)";
    let secs = match num_of(v) {
        Some(n) => as_f64(n),
        None => return Err(type_error("sleep", expected, v)),
    };
    // The negated comparison also rejects NaN.
    if !(0.0..=MAX_SLEEP_SECS).contains(&secs) {
        return Err(type_error("sleep", expected, v));
    }
    let duration = Duration::try_from_secs_f64(secs).map_err(|e| format!("sleep: {e}"))?;
    std::thread::sleep(duration);
    Ok(v.clone())
}

// ---------------------------------------------------------------------------------------
// Number theory
// ---------------------------------------------------------------------------------------

/// Largest n whose Fibonacci number fits u64.
const MAX_FIB: u64 = 93;

fn fib(v: &Value, _: &Options) -> Result<Value, String> {
    let n = expect_int("fib", "a non-negative integer", v)?;
    let n = u64::try_from(n).map_err(|_| type_error("fib", "a non-negative integer", v))?;
    if n > MAX_FIB {
        return Err(format!(
            "overflow: fib({n}) does not fit in a 64-bit integer (the largest n that fits is {MAX_FIB})"
        ));
    }
    if n == 0 {
        return Ok(Value::from(0u64));
    }
    // Invariant: (a, b) = (fib(i - 1), fib(i)); stopping at i = n means we never compute
    // fib(n + 1), which for n = 93 would not fit.
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 1..n {
        // Cannot fail for n <= 93, but checked so a wrong MAX_FIB could never wrap.
        let next = a
            .checked_add(b)
            .ok_or_else(|| format!("overflow: fib({n}) does not fit in a 64-bit integer"))?;
        (a, b) = (b, next);
    }
    Ok(Value::from(b))
}

fn is_prime(v: &Value, _: &Options) -> Result<Value, String> {
    let n = expect_int("is_prime", "an integer", v)?;
    // Negative numbers, 0 and 1 are not prime; inputs never exceed u64.
    Ok(Value::Bool(u64::try_from(n).is_ok_and(is_prime_u64)))
}

fn factorize(v: &Value, _: &Options) -> Result<Value, String> {
    let expected = "an integer >= 1";
    let n = expect_int("factorize", expected, v)?;
    let n = u64::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| type_error("factorize", expected, v))?;
    let factors = prime_factors(n).map_err(|e| format!("factorize({n}): {e}"))?;
    Ok(Value::Array(factors.into_iter().map(Value::from).collect()))
}

fn collatz_steps(v: &Value, _: &Options) -> Result<Value, String> {
    // Far above the longest known trajectory of any 64-bit start (under 3000 steps); only
    // a counterexample to the Collatz conjecture could hit it, and then we must not hang.
    const MAX_STEPS: u64 = 1_000_000;
    let expected = "an integer >= 1";
    let start = expect_int("collatz_steps", expected, v)?;
    let start = u64::try_from(start)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| type_error("collatz_steps", expected, v))?;
    // Trajectories of 64-bit starts climb above u64::MAX, so walk in u128 (still checked).
    let mut n = u128::from(start);
    let mut steps = 0u64;
    while n != 1 {
        n = if n % 2 == 0 {
            n / 2
        } else {
            n.checked_mul(3)
                .and_then(|m| m.checked_add(1))
                .ok_or_else(|| format!("overflow: collatz_steps({start}) exceeds 128 bits"))?
        };
        steps += 1;
        if steps > MAX_STEPS {
            return Err(format!(
                "collatz_steps({start}) did not reach 1 within {MAX_STEPS} steps"
            ));
        }
    }
    Ok(Value::from(steps))
}

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    // The remainder is < m <= u64::MAX, so the narrowing cast is exact.
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut result = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    result
}

/// Deterministic Miller-Rabin: the first 12 primes as bases are exact for all n < 3.3e24,
/// which covers u64.
fn is_prime_u64(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    // n is odd and > 37 here, so n - 1 is even and non-zero.
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Prime factors of n >= 1, ascending with repetition. Trial division strips small
/// factors cheaply; what is left splits with Pollard-Brent, whose cost grows with the
/// square root of the smallest factor (at most ~2^16 steps for u64), so any u64
/// finishes in milliseconds.
fn prime_factors(mut n: u64) -> Result<Vec<u64>, String> {
    const TRIAL_LIMIT: u64 = 1000;
    let mut factors = Vec::new();
    let mut d = 2;
    while d <= TRIAL_LIMIT && d * d <= n {
        while n.is_multiple_of(d) {
            factors.push(d);
            n /= d;
        }
        d += if d == 2 { 1 } else { 2 };
    }
    split_large(n, &mut factors)?;
    factors.sort_unstable();
    Ok(factors)
}

/// Pushes the prime factors of `n` (which has no factor below the trial limit, or is 1).
fn split_large(n: u64, factors: &mut Vec<u64>) -> Result<(), String> {
    // Each attempt uses a different polynomial x^2 + c; one almost always suffices.
    const ATTEMPTS: u64 = 200;
    if n == 1 {
        return Ok(());
    }
    if is_prime_u64(n) {
        factors.push(n);
        return Ok(());
    }
    let d = (1..=ATTEMPTS)
        .find_map(|c| pollard_brent(n, c))
        .ok_or_else(|| format!("could not split {n} (please report this)"))?;
    split_large(d, factors)?;
    split_large(n / d, factors)
}

/// Brent's variant of Pollard's rho with batched gcds. Returns a non-trivial factor of the
/// odd composite `n`, or None if this `c` failed (the caller tries another).
fn pollard_brent(n: u64, c: u64) -> Option<u64> {
    // Products of BATCH differences share one gcd; MAX_CYCLE bounds the work per attempt
    // far above the ~2^16 steps a 64-bit n needs.
    const BATCH: u64 = 128;
    const MAX_CYCLE: u64 = 1 << 22;
    let step = |x: u64| ((u128::from(x) * u128::from(x) + u128::from(c)) % u128::from(n)) as u64;
    let (mut x, mut y, mut ys) = (2 % n, 2 % n, 2 % n);
    let (mut q, mut g, mut r) = (1u64, 1u64, 1u64);
    while g == 1 {
        if r > MAX_CYCLE {
            return None;
        }
        x = y;
        for _ in 0..r {
            y = step(y);
        }
        let mut k = 0;
        while k < r && g == 1 {
            ys = y;
            for _ in 0..BATCH.min(r - k) {
                y = step(y);
                q = mul_mod(q, x.abs_diff(y), n);
            }
            g = gcd(q, n);
            k += BATCH;
        }
        r *= 2;
    }
    if g == n {
        // The batch overshot (or hit the cycle): redo it one step at a time. Some step in
        // the batch shares a factor with n, so this ends within BATCH steps.
        g = 1;
        for _ in 0..BATCH {
            ys = step(ys);
            g = gcd(x.abs_diff(ys), n);
            if g > 1 {
                break;
            }
        }
    }
    (g > 1 && g < n).then_some(g)
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

fn sha256_file(v: &Value, _: &Options) -> Result<Value, String> {
    let mut hasher = Sha256::new();
    for_each_chunk("sha256_file", v, |chunk| hasher.update(chunk))?;
    Ok(Value::String(hex(&hasher.finalize())))
}

fn line_count(v: &Value, _: &Options) -> Result<Value, String> {
    let mut lines = 0u64;
    let mut last = None;
    for_each_chunk("line_count", v, |chunk| {
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk.last().copied().or(last);
    })?;
    // A non-empty last line without '\n' still counts.
    if last.is_some_and(|b| b != b'\n') {
        lines += 1;
    }
    Ok(Value::from(lines))
}

fn word_count(v: &Value, _: &Options) -> Result<Value, String> {
    let mut counter = WordCounter::default();
    for_each_chunk("word_count", v, |chunk| counter.feed(chunk))?;
    Ok(Value::from(counter.finish()))
}

/// Counts words separated by Unicode whitespace in a byte stream. Invalid UTF-8 counts
/// as word characters (like `wc`); a character split across chunks is carried over.
#[derive(Default)]
struct WordCounter {
    pending: Vec<u8>,
    in_word: bool,
    words: u64,
}

impl WordCounter {
    fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        let complete = complete_prefix_len(&self.pending);
        let pending = std::mem::take(&mut self.pending);
        let (now, later) = pending.split_at(complete);
        self.scan(now);
        self.pending = later.to_vec();
    }

    fn finish(mut self) -> u64 {
        let rest = std::mem::take(&mut self.pending);
        self.scan(&rest);
        self.words
    }

    fn scan(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                self.step(c.is_whitespace());
            }
            if !chunk.invalid().is_empty() {
                self.step(false);
            }
        }
    }

    fn step(&mut self, whitespace: bool) {
        if whitespace {
            self.in_word = false;
        } else if !self.in_word {
            self.in_word = true;
            self.words += 1;
        }
    }
}

/// Length of `bytes` without a UTF-8 sequence that is cut off at the end (which the next
/// chunk completes).
fn complete_prefix_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let i = len - back;
        let b = bytes.get(i).copied().unwrap_or(0);
        if b & 0xC0 != 0x80 {
            // A lead byte (or ASCII): how long is its sequence?
            let need = match b {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            return if need > back { i } else { len };
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn call(name: &str, input: Value) -> Result<Value, String> {
        lookup(name)
            .unwrap_or_else(|| panic!("no builtin {name}"))
            .call(&input, &Options::default())
    }

    fn ok(name: &str, input: Value) -> Value {
        call(name, input.clone()).unwrap_or_else(|e| panic!("{name}({input}) failed: {e}"))
    }

    fn err(name: &str, input: Value) -> String {
        match call(name, input.clone()) {
            Ok(out) => panic!("{name}({input}) should fail, got {out}"),
            Err(e) => e,
        }
    }

    fn fmt(template: &str, input: Value) -> Result<Value, String> {
        let options = Options {
            template: Some(template.to_string()),
        };
        lookup("format").unwrap().call(&input, &options)
    }

    /// A fresh file under the temp dir with `content`; removed on drop.
    struct TempFile(PathBuf);
    impl TempFile {
        fn new(content: &[u8]) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "runjobs-builtins-test-{}-{n}.txt",
                std::process::id()
            ));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }
        fn json(&self) -> Value {
            json!(self.0.to_str().unwrap())
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    // --- table ---

    #[test]
    fn table_is_sorted_unique_and_complete() {
        let names: Vec<_> = names().collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        assert_eq!(
            names,
            [
                "add",
                "collatz_steps",
                "cube",
                "double",
                "factorize",
                "fib",
                "format",
                "identity",
                "is_prime",
                "len",
                "line_count",
                "lower",
                "negate",
                "print_number",
                "sha256",
                "sha256_file",
                "sleep",
                "square",
                "sum",
                "upper",
                "word_count",
            ]
        );
        for b in all() {
            assert!(!b.input.is_empty() && !b.output.is_empty() && !b.doc.is_empty());
            assert_eq!(lookup(b.name).map(|l| l.name), Some(b.name));
        }
        assert!(lookup("nope").is_none());
        assert!(lookup("").is_none());
    }

    // --- arithmetic ---

    #[test]
    fn square_happy_and_boundaries() {
        assert_eq!(ok("square", json!(-3)), json!(9));
        assert_eq!(ok("square", json!(0)), json!(0));
        assert_eq!(ok("square", json!(2.5)), json!(6.25));
        assert_eq!(
            ok("square", json!(4294967295u64)),
            json!(18446744065119617025u64)
        );
        assert_eq!(
            ok("square", json!(3037000499i64)),
            json!(9223372030926249001i64)
        );
        let e = err("square", json!(i64::MAX));
        assert!(
            e.contains("overflow") && e.contains("square(9223372036854775807)"),
            "{e}"
        );
        err("square", json!(4294967296u64));
        err("square", json!(i64::MIN));
        err("square", json!(u64::MAX));
        let e = err("square", json!(1e200));
        assert!(e.contains("not a finite number"), "{e}");
    }

    #[test]
    fn square_wrong_type() {
        assert_eq!(
            err("square", json!("abc")),
            "square expects a number, got string \"abc\""
        );
        assert_eq!(
            err("square", json!(null)),
            "square expects a number, got null"
        );
        assert!(err("square", json!(true)).contains("boolean true"));
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let long = "x".repeat(10_000);
        let e = err("square", json!(long));
        assert!(e.len() < 200, "{e}");
        assert!(e.ends_with('…'), "{e}");
        let multibyte = "é".repeat(500);
        let e = err("cube", json!(multibyte));
        assert!(e.ends_with('…') && !e.contains('\u{FFFD}'), "{e}");
        let big: Vec<u64> = (0..100_000).collect();
        assert!(err("upper", json!(big)).len() < 200);
    }

    #[test]
    fn cube_double_negate() {
        assert_eq!(ok("cube", json!(-3)), json!(-27));
        assert_eq!(ok("cube", json!(1.5)), json!(3.375));
        assert_eq!(ok("cube", json!(2097151)), json!(9223358842721533951i64));
        assert_eq!(ok("cube", json!(2642245)), json!(18446724184312856125u64));
        err("cube", json!(2642246));
        err("cube", json!(u64::MAX));
        err("cube", json!(1e200));
        err("cube", json!([1]));

        assert_eq!(ok("double", json!(21)), json!(42));
        assert_eq!(ok("double", json!(-0.25)), json!(-0.5));
        assert_eq!(
            ok("double", json!(i64::MAX)),
            json!(18446744073709551614u64)
        );
        err("double", json!(u64::MAX));
        err("double", json!(1e308));
        err("double", json!({}));

        assert_eq!(ok("negate", json!(5)), json!(-5));
        assert_eq!(ok("negate", json!(-1.5)), json!(1.5));
        assert_eq!(ok("negate", json!(i64::MIN)), json!(9223372036854775808u64));
        assert_eq!(ok("negate", json!(9223372036854775808u64)), json!(i64::MIN));
        err("negate", json!(9223372036854775809u64));
        err("negate", json!("5"));
    }

    #[test]
    fn identity_returns_input() {
        for v in [
            json!(null),
            json!([1, "a"]),
            json!({"a": {"b": 2}}),
            json!(1.5),
        ] {
            assert_eq!(ok("identity", v.clone()), v);
        }
    }

    #[test]
    fn add_numbers() {
        assert_eq!(ok("add", json!({"a": 2, "b": 3})), json!(5));
        assert_eq!(ok("add", json!({"a": 2, "b": 0.5})), json!(2.5));
        assert_eq!(
            ok("add", json!({"a": u64::MAX, "b": -1})),
            json!(18446744073709551614u64)
        );
        assert_eq!(ok("add", json!({"a": i64::MIN, "b": -0})), json!(i64::MIN));
        let e = err("add", json!({"a": u64::MAX, "b": 1}));
        assert!(e.contains("overflow: add(18446744073709551615, 1)"), "{e}");
        err("add", json!({"a": i64::MIN, "b": -1}));
        err("add", json!({"a": 1e308, "b": 1e308}));
        assert!(err("add", json!({"a": 1})).contains("`b` is missing"));
        assert!(err("add", json!({"a": 1, "b": "x"})).contains("`b` to be a number"));
        assert!(err("add", json!({"a": 1, "b": 2, "c": 3})).contains("unexpected key `c`"));
        assert!(err("add", json!([1, 2])).starts_with("add expects a table {a, b}"));
    }

    #[test]
    fn sum_numbers() {
        assert_eq!(ok("sum", json!([])), json!(0));
        assert_eq!(ok("sum", json!([1, 2, 3])), json!(6));
        assert_eq!(ok("sum", json!([1, 2.5])), json!(3.5));
        // Intermediate values beyond 64 bits are fine if the total fits.
        assert_eq!(
            ok(
                "sum",
                json!([u64::MAX, u64::MAX, i64::MIN, i64::MIN, i64::MIN, i64::MIN])
            ),
            json!(-2)
        );
        let e = err("sum", json!([u64::MAX, 1]));
        assert!(e.contains("overflow: sum of 2 numbers"), "{e}");
        err("sum", json!([1e308, 1e308]));
        assert!(err("sum", json!([1, "a"])).contains("string \"a\" at index 1"));
        err("sum", json!(5));
    }

    // --- text ---

    #[test]
    fn print_number_matches_python() {
        let cases = [
            (json!(5), "5"),
            (json!(-7), "-7"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.5), "1.5"),
            (json!(2.0), "2.0"),
            (json!(-0.0), "-0.0"),
            (json!(0.0), "0.0"),
            (json!(1e16), "1e+16"),
            (json!(1e15), "1000000000000000.0"),
            (json!(1e-5), "1e-05"),
            (json!(0.0001), "0.0001"),
            (json!(12345678901234567.0), "1.2345678901234568e+16"),
            (json!(1e308), "1e+308"),
            (json!(5e-324), "5e-324"),
            (json!(0.1 + 0.2), "0.30000000000000004"),
            (json!(123456789.0), "123456789.0"),
            (json!(-1.5e-7), "-1.5e-07"),
            // 87829832555702.125 exactly, halfway between the two shortest candidates:
            // Python rounds half to even (bits spelled out so the literal is exact).
            (
                json!(f64::from_bits(0x42d3_f85e_7e17_2d88)),
                "87829832555702.12",
            ),
        ];
        for (input, text) in cases {
            assert_eq!(
                ok("print_number", input.clone()),
                json!(format!("Process {text}: {text}")),
                "{input}"
            );
        }
        err("print_number", json!("5"));
        err("print_number", json!(true));
    }

    #[test]
    fn format_templates() {
        assert_eq!(fmt("item {input}", json!("x")).unwrap(), json!("item x"));
        assert_eq!(fmt("n={input}", json!(3)).unwrap(), json!("n=3"));
        assert_eq!(
            fmt("{input}", json!({"a": [1, "b"]})).unwrap(),
            json!(r#"{"a":[1,"b"]}"#)
        );
        assert_eq!(
            fmt(
                "hello {input.name}, {input.age}",
                json!({"name": "Ann", "age": 30})
            )
            .unwrap(),
            json!("hello Ann, 30")
        );
        assert_eq!(
            fmt("{{input}} {{{input}}} }}", json!(1)).unwrap(),
            json!("{input} {1} }")
        );
        assert_eq!(fmt("{input.a.b}", json!({"a.b": 1})).unwrap(), json!("1"));
        assert_eq!(fmt("", json!(1)).unwrap(), json!(""));
        assert_eq!(fmt("plain", json!(1)).unwrap(), json!("plain"));
        assert_eq!(fmt("é{input}ü", json!("ß")).unwrap(), json!("éßü"));
    }

    #[test]
    fn format_errors() {
        let missing = call("format", json!(1)).unwrap_err();
        assert!(missing.contains("needs a `template` option"), "{missing}");
        let e = fmt("{input.name}", json!({"id": 1})).unwrap_err();
        assert!(e.contains("no key `name`") && e.contains("`id`"), "{e}");
        let e = fmt("{input.name}", json!("x")).unwrap_err();
        assert!(e.contains("needs an object input"), "{e}");
        for bad in ["{foo}", "{}", "{input.}", "{inputx}", "{ input }"] {
            let e = fmt(bad, json!({"": 1})).unwrap_err();
            assert!(e.contains("unknown placeholder"), "{bad}: {e}");
        }
        assert!(fmt("{input", json!(1)).unwrap_err().contains("unclosed"));
        assert!(fmt("a } b", json!(1)).unwrap_err().contains("single `}`"));
        // Template errors come first, even when the input would also be wrong.
        assert!(
            fmt("{nope}", json!(1))
                .unwrap_err()
                .contains("unknown placeholder")
        );
    }

    #[test]
    fn upper_lower_len() {
        assert_eq!(ok("upper", json!("abc ß")), json!("ABC SS"));
        assert_eq!(ok("lower", json!("ÀB")), json!("àb"));
        err("upper", json!(1));
        assert_eq!(
            err("lower", json!(null)),
            "lower expects a string, got null"
        );

        assert_eq!(ok("len", json!("héllo")), json!(5));
        assert_eq!(ok("len", json!([1, 2, 3])), json!(3));
        assert_eq!(ok("len", json!({"a": 1, "b": 2})), json!(2));
        assert_eq!(ok("len", json!("")), json!(0));
        err("len", json!(5));
        err("len", json!(null));
    }

    #[test]
    fn sha256_of_strings() {
        assert_eq!(
            ok("sha256", json!("abc")),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            ok("sha256", json!("")),
            json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        err("sha256", json!(1));
    }

    // --- time ---

    #[test]
    fn sleep_sleeps_and_returns_input() {
        let start = Instant::now();
        assert_eq!(ok("sleep", json!(0.05)), json!(0.05));
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(ok("sleep", json!(0)), json!(0));
        for bad in [
            json!(-1),
            json!(-0.5),
            json!(31536001),
            json!(1e300),
            json!(u64::MAX),
        ] {
            let e = err("sleep", bad);
            assert!(e.starts_with("sleep expects a number of seconds"), "{e}");
        }
        err("sleep", json!("1"));
    }

    // --- number theory ---

    #[test]
    fn fib_values_and_limit() {
        assert_eq!(ok("fib", json!(0)), json!(0));
        assert_eq!(ok("fib", json!(1)), json!(1));
        assert_eq!(ok("fib", json!(10)), json!(55));
        assert_eq!(ok("fib", json!(93)), json!(12200160415121876738u64));
        let e = err("fib", json!(94));
        assert!(e.contains("overflow") && e.contains("93"), "{e}");
        err("fib", json!(u64::MAX));
        err("fib", json!(-1));
        err("fib", json!(3.0));
        err("fib", json!("3"));
    }

    #[test]
    fn is_prime_known_values() {
        for p in [
            2u64,
            3,
            5,
            37,
            41,
            7919,
            1_000_000_007,
            4294967291,
            18446744073709551557,
        ] {
            assert_eq!(ok("is_prime", json!(p)), json!(true), "{p}");
        }
        // Includes Carmichael numbers and strong pseudoprimes to small bases.
        for c in [
            0u64,
            1,
            4,
            561,
            1105,
            2047,
            3215031751,
            3825123056546413051,
            4294967291 * 4294967279,
            u64::MAX,
            1 << 63,
        ] {
            assert_eq!(ok("is_prime", json!(c)), json!(false), "{c}");
        }
        assert_eq!(ok("is_prime", json!(-7)), json!(false));
        assert_eq!(ok("is_prime", json!(i64::MIN)), json!(false));
        err("is_prime", json!(7.0));
        err("is_prime", json!("7"));
    }

    #[test]
    fn is_prime_agrees_with_sieve() {
        const N: usize = 20_000;
        let mut sieve = vec![true; N];
        sieve[0] = false;
        sieve[1] = false;
        for i in 2..N {
            if sieve[i] {
                for j in (i * i..N).step_by(i) {
                    sieve[j] = false;
                }
            }
        }
        for (n, &prime) in sieve.iter().enumerate() {
            assert_eq!(is_prime_u64(n as u64), prime, "{n}");
        }
    }

    #[test]
    fn factorize_values() {
        assert_eq!(ok("factorize", json!(1)), json!([]));
        assert_eq!(ok("factorize", json!(2)), json!([2]));
        assert_eq!(ok("factorize", json!(360)), json!([2, 2, 2, 3, 3, 5]));
        assert_eq!(
            ok("factorize", json!(600851475143u64)),
            json!([71, 839, 1471, 6857])
        );
        assert_eq!(ok("factorize", json!(1u64 << 63)), json!(vec![2; 63]));
        assert_eq!(
            ok("factorize", json!(18446744073709551557u64)),
            json!([18446744073709551557u64])
        );
        assert_eq!(
            ok("factorize", json!(u64::MAX)),
            json!([3, 5, 17, 257, 641, 65537, 6700417])
        );
        err("factorize", json!(0));
        err("factorize", json!(-12));
        err("factorize", json!(12.0));
        err("factorize", json!("12"));
    }

    #[test]
    fn factorize_hard_numbers_fast() {
        let start = Instant::now();
        let cases: [(u64, &[u64]); 4] = [
            (4294967279 * 4294967291, &[4294967279, 4294967291]),
            (4294967291 * 4294967291, &[4294967291, 4294967291]),
            (1009 * 1009 * 1013, &[1009, 1009, 1013]),
            (2147483647 * 2147483629 * 3, &[3, 2147483629, 2147483647]),
        ];
        for (n, factors) in cases {
            assert_eq!(ok("factorize", json!(n)), json!(factors), "{n}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn factorize_products_multiply_back() {
        // A cheap deterministic sweep of large numbers: factors are prime and multiply back.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = x | 1;
            let factors = prime_factors(n).unwrap();
            assert!(factors.iter().all(|&f| is_prime_u64(f)), "{n}: {factors:?}");
            assert!(factors.windows(2).all(|w| w[0] <= w[1]));
            let product = factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f));
            assert_eq!(product, Some(n));
        }
    }

    #[test]
    fn collatz_values() {
        assert_eq!(ok("collatz_steps", json!(1)), json!(0));
        assert_eq!(ok("collatz_steps", json!(2)), json!(1));
        assert_eq!(ok("collatz_steps", json!(27)), json!(111));
        assert_eq!(ok("collatz_steps", json!(837799)), json!(524));
        // Its trajectory climbs above u64::MAX; we walk in u128 so it still answers.
        let big = ok("collatz_steps", json!(u64::MAX));
        assert!(big.as_u64().is_some_and(|s| s > 0), "{big}");
        err("collatz_steps", json!(0));
        err("collatz_steps", json!(-5));
        err("collatz_steps", json!(2.0));
        err("collatz_steps", json!([]));
    }

    // --- files ---

    #[test]
    fn sha256_file_matches_string_hash() {
        let content = "abc".repeat(50_000); // spans several 64 KiB chunks
        let file = TempFile::new(content.as_bytes());
        assert_eq!(ok("sha256_file", file.json()), ok("sha256", json!(content)));
        let empty = TempFile::new(b"");
        assert_eq!(ok("sha256_file", empty.json()), ok("sha256", json!("")));
    }

    #[test]
    fn file_errors_name_path_and_os_error() {
        let missing = std::env::temp_dir().join("runjobs-builtins-test-does-not-exist.txt");
        let path = missing.to_str().unwrap();
        for name in ["sha256_file", "line_count", "word_count"] {
            let e = err(name, json!(path));
            assert!(e.starts_with(&format!("cannot read `{path}`: ")), "{e}");
            assert!(e.contains("os error"), "{e}");
            assert!(err(name, json!(1)).contains("expects a path string"));
            assert!(err(name, json!("")).contains("empty string"));
            // A directory opens on Unix but fails to read: still an error, not a panic.
            err(name, json!(std::env::temp_dir().to_str().unwrap()));
        }
    }

    #[test]
    fn relative_paths_resolve_against_current_dir() {
        // Cargo runs tests in the crate root, which has Cargo.toml.
        let n = ok("line_count", json!("Cargo.toml"));
        assert!(n.as_u64().is_some_and(|n| n > 0));
    }

    #[test]
    fn line_count_cases() {
        let cases: [(&[u8], u64); 7] = [
            (b"", 0),
            (b"\n", 1),
            (b"a", 1),
            (b"a\n", 1),
            (b"a\nb", 2),
            (b"a\n\nb\n", 3),
            (b"\xff\xfe\n\x00", 2),
        ];
        for (content, lines) in cases {
            let file = TempFile::new(content);
            assert_eq!(ok("line_count", file.json()), json!(lines), "{content:?}");
        }
        // Across chunk boundaries, with and without a final newline.
        let many = "line\n".repeat(100_000);
        let file = TempFile::new(many.as_bytes());
        assert_eq!(ok("line_count", file.json()), json!(100_000));
        let file = TempFile::new(format!("{many}tail").as_bytes());
        assert_eq!(ok("line_count", file.json()), json!(100_001));
    }

    #[test]
    fn word_count_cases() {
        let cases: [(&[u8], u64); 8] = [
            (b"", 0),
            (b"   \n\t ", 0),
            (b"one", 1),
            (b"one two\tthree\nfour", 4),
            (b"  lead and trail  ", 3),
            ("non\u{00A0}breaking\u{3000}space".as_bytes(), 3),
            (b"bad\xffbytes are words", 3),
            (b"\xff \xfe", 2),
        ];
        for (content, words) in cases {
            let file = TempFile::new(content);
            assert_eq!(ok("word_count", file.json()), json!(words), "{content:?}");
        }
    }

    #[test]
    fn word_count_multibyte_whitespace_across_chunks() {
        // Put a 3-byte ideographic space (U+3000) across the 64 KiB chunk boundary.
        let mut content = vec![b'a'; CHUNK - 1];
        content.extend_from_slice("\u{3000}b c".as_bytes());
        let file = TempFile::new(&content);
        assert_eq!(ok("word_count", file.json()), json!(3));
        // And a truncated sequence at the very end of the file counts as a word char.
        let mut counter = WordCounter::default();
        counter.feed(b"x \xe3\x80");
        assert_eq!(counter.finish(), 2);
    }

    #[test]
    fn complete_prefix_len_cases() {
        assert_eq!(complete_prefix_len(b""), 0);
        assert_eq!(complete_prefix_len(b"ab"), 2);
        assert_eq!(complete_prefix_len("é".as_bytes()), 2);
        assert_eq!(complete_prefix_len(b"a\xc3"), 1);
        assert_eq!(complete_prefix_len(b"a\xe3\x80"), 1);
        assert_eq!(complete_prefix_len(b"a\xf0\x9f\x98"), 1);
        assert_eq!(complete_prefix_len("a😀".as_bytes()), 5);
        assert_eq!(complete_prefix_len(b"\x80\x80\x80\x80"), 4);
    }

    // --- robustness ---

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            json!(null),
            json!(true),
            json!(false),
            json!(-1),
            json!(0),
            json!(1),
            json!(1.5),
            json!(-1.5),
            json!(1e308),
            json!(-1e308),
            json!(5e-324),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(""),
            json!("x"),
            json!("{input}"),
            json!("\u{0}\u{FFFF}😀"),
            json!([]),
            json!([1, "a"]),
            json!([u64::MAX, u64::MAX]),
            json!([1e308, -1e308]),
            json!({}),
            json!({"a": 1}),
            json!({"a": u64::MAX, "b": u64::MAX}),
            json!({"a": null, "b": 1}),
        ];
        let templates = [
            None,
            Some(""),
            Some("{input}"),
            Some("{input.a}"),
            Some("{"),
            Some("}"),
            Some("{{}}"),
            Some("{input.}"),
            Some("{input.a"),
            Some("😀{input}😀"),
        ];
        for b in all() {
            for input in &odd {
                if b.name == "sleep" && num_of(input).is_some_and(|n| as_f64(n) > 0.01) {
                    continue;
                }
                for template in templates {
                    let options = Options {
                        template: template.map(str::to_string),
                    };
                    // Must return (Ok or Err), never panic; errors must say something.
                    if let Err(e) = b.call(input, &options) {
                        assert!(!e.is_empty(), "{} on {input}", b.name);
                    }
                }
            }
        }
    }
}
