//! The two line protocols runjobs speaks with long-lived workers.
//!
//! External and Python workers speak SPEC §5's JSON lines: `{"id": 7, "input": 3}` in,
//! `{"id": 7, "output": 9}` or `{"id": 7, "error": "message"}` out (a worker may add
//! `"duration_s"`, the time the call took).
//!
//! Builtin workers are runjobs itself, so they get a lean framing that costs a few bytes and
//! no JSON envelope per item (a million tiny items spend most of their time here):
//!
//! ```text
//! runjobs → worker:  ID INPUT_JSON\n
//! worker → runjobs:  ID o NANOS OUTPUT_JSON\n     (ok: the output)
//!                    ID e NANOS MESSAGE_JSON\n    (error: a JSON string)
//! ```
//! `NANOS` is how long the call took. Compact JSON never contains a newline, so a line is
//! always one message.

use std::io::Write;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Appends one request line to `buf`.
pub fn write_request(buf: &mut Vec<u8>, id: u64, input: &Value) {
    buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    buf.push(b' ');
    serde_json::to_writer(&mut *buf, input).expect("a JSON value always serializes");
    buf.push(b'\n');
}

/// Splits a request line into its id and input text.
pub fn parse_request(line: &str) -> Option<(u64, &str)> {
    let (id, input) = split_word(line.trim_end_matches('\n'))?;
    Some((id.parse().ok()?, input))
}

/// Appends one reply line to `buf`.
pub fn write_reply(
    buf: &mut impl Write,
    id: u64,
    nanos: u64,
    result: &Result<Value, String>,
) -> std::io::Result<()> {
    let mut ids = itoa::Buffer::new();
    let mut times = itoa::Buffer::new();
    let flag = if result.is_ok() { " o " } else { " e " };
    buf.write_all(ids.format(id).as_bytes())?;
    buf.write_all(flag.as_bytes())?;
    buf.write_all(times.format(nanos).as_bytes())?;
    buf.write_all(b" ")?;
    match result {
        Ok(output) => serde_json::to_writer(&mut *buf, output)?,
        Err(message) => serde_json::to_writer(&mut *buf, message)?,
    }
    buf.write_all(b"\n")
}

/// One parsed reply.
#[derive(Debug)]
pub struct Reply {
    pub id: u64,
    pub result: Result<Box<RawValue>, String>,
    /// The time the call took, when the worker says.
    pub duration_s: Option<f64>,
}

/// Parses a reply line; `None` when the line is not one.
pub fn parse_reply(line: &str) -> Option<Reply> {
    let line = line.trim_end_matches('\n');
    let (id, rest) = split_word(line)?;
    let (flag, rest) = split_word(rest)?;
    let (nanos, payload) = split_word(rest)?;
    let id = id.parse().ok()?;
    let nanos: u64 = nanos.parse().ok()?;
    let result = match flag {
        "o" => Ok(RawValue::from_string(payload.to_owned()).ok()?),
        "e" => Err(serde_json::from_str::<String>(payload).ok()?),
        _ => return None,
    };
    Some(Reply {
        id,
        result,
        duration_s: Some(nanos as f64 / 1e9),
    })
}

/// Appends one SPEC §5 request line to `buf`.
pub fn write_json_request(buf: &mut Vec<u8>, id: u64, input: &Value) {
    buf.extend_from_slice(b"{\"id\":");
    buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    buf.extend_from_slice(b",\"input\":");
    serde_json::to_writer(&mut *buf, input).expect("a JSON value always serializes");
    buf.extend_from_slice(b"}\n");
}

/// Appends one batch request line (several items) to `buf`.
pub fn write_batch_request<'a>(
    buf: &mut Vec<u8>,
    items: impl Iterator<Item = (u64, &'a Value)> + Clone,
) {
    let mut ids = itoa::Buffer::new();
    buf.extend_from_slice(b"{\"ids\":[");
    for (n, (id, _)) in items.clone().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(ids.format(id).as_bytes());
    }
    buf.extend_from_slice(b"],\"inputs\":[");
    for (n, (_, input)) in items.enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut *buf, input).expect("a JSON value always serializes");
    }
    buf.extend_from_slice(b"]}\n");
}

/// A SPEC §5 answer line.
#[derive(Deserialize)]
struct JsonReply {
    id: u64,
    #[serde(default)]
    output: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    duration_s: Option<f64>,
}

/// Several answers in one line (what the Python shim sends): parallel arrays, with `errors`
/// optional and `null` where an item has none. `duration_s` is the whole batch's time,
/// spread evenly over its items.
#[derive(Deserialize)]
struct JsonBatch {
    ids: Vec<u64>,
    outputs: Vec<Option<Box<RawValue>>>,
    #[serde(default)]
    errors: Option<Vec<Option<Value>>>,
    #[serde(default)]
    duration_s: Option<f64>,
}

/// Parses a SPEC §5 answer line (or a batch line) into `out`; false when the line is not
/// one. A missing `output` is null; an `error` that is not a string is shown as JSON.
pub fn parse_json_replies(line: &str, out: &mut Vec<Reply>) -> bool {
    if line.starts_with("{\"ids\"") {
        let Ok(batch) = serde_json::from_str::<JsonBatch>(line) else {
            return false;
        };
        let n = batch.ids.len();
        if n == 0 || batch.outputs.len() != n || batch.errors.as_ref().is_some_and(|e| e.len() != n)
        {
            return false;
        }
        let mut errors = batch.errors.map(Vec::into_iter);
        let each = batch.duration_s.map(|total| total / n as f64);
        for (id, output) in batch.ids.into_iter().zip(batch.outputs) {
            let error = errors.as_mut().and_then(Iterator::next).flatten();
            out.push(reply(id, output, error, each));
        }
        return true;
    }
    match serde_json::from_str::<JsonReply>(line) {
        Ok(r) => {
            out.push(reply(r.id, r.output, r.error, r.duration_s));
            true
        }
        Err(_) => false,
    }
}

fn reply(
    id: u64,
    output: Option<Box<RawValue>>,
    error: Option<Value>,
    duration: Option<f64>,
) -> Reply {
    let result = match error {
        Some(Value::String(message)) => Err(message),
        Some(Value::Null) | None => Ok(output.unwrap_or_else(null)),
        Some(other) => Err(other.to_string()),
    };
    let duration_s = duration.filter(|d| d.is_finite() && *d >= 0.0);
    Reply {
        id,
        result,
        duration_s,
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

/// Splits off the text before the first space. The words here are a few bytes long, so a
/// plain scan beats a general searcher.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let space = text.bytes().position(|b| b == b' ')?;
    Some((&text[..space], &text[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips() {
        let mut buf = Vec::new();
        write_request(&mut buf, 7, &json!({"a": [1, "x y"]}));
        let line = String::from_utf8(buf).unwrap();
        assert_eq!(line, "7 {\"a\":[1,\"x y\"]}\n");
        assert_eq!(parse_request(&line), Some((7, "{\"a\":[1,\"x y\"]}")));
    }

    #[test]
    fn replies_round_trip() {
        let mut buf = Vec::new();
        write_reply(&mut buf, 3, 1500, &Ok(json!("a b\nc"))).unwrap();
        write_reply(&mut buf, 4, 20, &Err("bad \"x\"".to_owned())).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut lines = text.lines();
        let ok = parse_reply(lines.next().unwrap()).unwrap();
        assert_eq!((ok.id, ok.result.unwrap().get()), (3, "\"a b\\nc\""));
        assert!((ok.duration_s.unwrap() - 1.5e-6).abs() < 1e-12);
        let err = parse_reply(lines.next().unwrap()).unwrap();
        assert_eq!(err.result.unwrap_err(), "bad \"x\"");
    }

    #[test]
    fn json_lines_replies() {
        let mut buf = Vec::new();
        write_json_request(&mut buf, 9, &json!("a\nb"));
        assert_eq!(buf, b"{\"id\":9,\"input\":\"a\\nb\"}\n");
        let one = |line: &str| {
            let mut out = Vec::new();
            parse_json_replies(line, &mut out).then(|| out.pop().unwrap())
        };
        let ok = one(r#"{"id":9,"output":{"x":[1]}}"#).unwrap();
        assert_eq!(ok.result.unwrap().get(), r#"{"x":[1]}"#);
        assert_eq!(ok.duration_s, None);
        let none = one(r#"{"id":9,"output":null,"duration_s":0.5}"#).unwrap();
        assert_eq!(none.result.unwrap().get(), "null");
        assert_eq!(none.duration_s, Some(0.5));
        let err = one(r#"{"id":9,"error":"boom"}"#).unwrap();
        assert_eq!(err.result.unwrap_err(), "boom");
        let odd = one(r#"{"id":9,"error":{"code":3}}"#).unwrap();
        assert_eq!(odd.result.unwrap_err(), r#"{"code":3}"#);
        for bad in ["", "9", "{}", r#"{"id":"x"}"#, "print me", r#"{"id":-1}"#] {
            assert!(one(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn batch_requests_are_parallel_arrays() {
        let mut buf = Vec::new();
        let inputs = [json!(1), json!("two")];
        write_batch_request(&mut buf, [(4, &inputs[0]), (5, &inputs[1])].into_iter());
        assert_eq!(buf, b"{\"ids\":[4,5],\"inputs\":[1,\"two\"]}\n");
    }

    #[test]
    fn batch_lines_carry_several_replies() {
        let mut out = Vec::new();
        let line =
            r#"{"ids":[1,2,3],"outputs":[1,null,[9]],"errors":[null,"bad",null],"duration_s":0.3}"#;
        assert!(parse_json_replies(line, &mut out));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].result.as_ref().unwrap().get(), "1");
        assert_eq!(out[1].result.as_ref().unwrap_err(), "bad");
        assert_eq!(out[2].result.as_ref().unwrap().get(), "[9]");
        assert!((out[1].duration_s.unwrap() - 0.1).abs() < 1e-9);
        let mut out = Vec::new();
        assert!(
            !parse_json_replies(r#"{"ids":[1,2],"outputs":[1]}"#, &mut out),
            "lengths must agree"
        );
        assert!(parse_json_replies(r#"{"ids":[4],"outputs":[2]}"#, &mut out));
    }

    #[test]
    fn garbage_is_not_a_reply() {
        for line in [
            "",
            "hello",
            "1 o",
            "1 x 5 2",
            "x o 5 2",
            "1 o 5 {oops",
            "1 e 5 3",
        ] {
            assert!(parse_reply(line).is_none(), "{line}");
        }
    }
}

/// The reply readers face whatever a worker prints: they must never panic.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Strings shaped like replies (so mutations reach deep), plus arbitrary text.
    fn reply_like() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{1,20} [oe] [0-9]{1,20} .{0,40}",
            r#"\{"id":[0-9-]{1,22},"(output|error)":.{0,30}\}"#,
            r#"\{"ids":\[[0-9,]{0,20}\],"outputs":\[.{0,20}\](,"errors":\[.{0,20}\])?(,"duration_s":.{0,8})?\}"#,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(2000)))]

        #[test]
        fn readers_never_panic(line in reply_like()) {
            let _ = parse_reply(&line);
            let mut out = Vec::new();
            if parse_json_replies(&line, &mut out) {
                prop_assert!(!out.is_empty());
            }
            let _ = parse_request(&line);
        }
    }
}
