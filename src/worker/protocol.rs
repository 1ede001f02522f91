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
//! runjobs → worker:  ID INPUT_JSON\n             (a first attempt)
//!                    ID:ATTEMPT INPUT_JSON\n     (a retry)
//!                    FIRST*COUNT START STEP\n    (first attempts at items FIRST… of a
//!                                                 `range`: input START + k * STEP)
//! worker → runjobs:  R FIRST COUNT NANOS LEN\n   then LEN bytes: COUNT result records
//!                    J FIRST COUNT NANOS LEN OFFSET\n
//!                                                 (the records are in the journal)
//!                    ID e NANOS MESSAGE_JSON\n    (an error: a JSON string)
//! ```
//! An `R` frame holds the `ok` results of the consecutive items FIRST, FIRST+1, … rendered
//! by the worker as the results file's records, one line each (`event::OkRecord`): runjobs
//! writes them out as they are, without parsing them. `NANOS` is how long the calls took in
//! all, and the frame header has a fixed width so a worker can fill it in once the frame is
//! complete. Compact JSON never contains a newline, so a line is always one message.
//!
//! A worker started with `--journal PATH` appends its records to the run's journal itself,
//! each line ending in `,\n` (so a run of them is a piece of the results file's JSON array),
//! and sends a `J` frame saying where they landed: LEN bytes at OFFSET. The records then
//! cross no pipe and no copy in runjobs, which writes them into the results file with
//! `copy_file_range`. A worker whose journal write fails sends `R` frames from then on.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::items::IntRun;

/// Appends one request line to `buf`: attempt number `attempt` at item `id`.
pub fn write_request(buf: &mut Vec<u8>, id: u64, attempt: u32, input: &Value) {
    let mut int = itoa::Buffer::new();
    buf.extend_from_slice(int.format(id).as_bytes());
    if attempt != 1 {
        buf.push(b':');
        buf.extend_from_slice(int.format(attempt).as_bytes());
    }
    buf.push(b' ');
    serde_json::to_writer(&mut *buf, input).expect("a JSON value always serializes");
    buf.push(b'\n');
}

/// Appends the request line of a run of first attempts at items with integer inputs (a
/// `range`): `FIRST*COUNT START STEP`, item `FIRST + k` having the input `START + k * STEP`.
pub fn write_run_request(buf: &mut Vec<u8>, run: &IntRun) {
    let mut int = itoa::Buffer::new();
    buf.extend_from_slice(int.format(run.first).as_bytes());
    buf.push(b'*');
    buf.extend_from_slice(int.format(run.count).as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(int.format(run.start).as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(int.format(run.step).as_bytes());
    buf.push(b'\n');
}

/// Parses a run request line; `None` when the line is not one.
pub fn parse_run_request(line: &[u8]) -> Option<IntRun> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let star = line.iter().take(21).position(|b| *b == b'*')?;
    let mut words = line[star + 1..].split(|b| *b == b' ');
    let count = parse_decimal(words.next()?)?;
    let mut int = || {
        let word = words.next()?;
        std::str::from_utf8(word).ok()?.parse::<i64>().ok()
    };
    let run = IntRun {
        first: parse_decimal(&line[..star])?,
        count,
        start: int()?,
        step: int()?,
    };
    (words.next().is_none() && count > 0 && run.first.checked_add(count).is_some()).then_some(run)
}

/// A request line, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub id: u64,
    pub attempt: u32,
    /// The input as JSON text.
    pub input: &'a [u8],
}

/// Splits a request line into its id, attempt and input text.
pub fn parse_request(line: &[u8]) -> Option<Request<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let space = line.iter().position(|b| *b == b' ')?;
    let (head, input) = (&line[..space], &line[space + 1..]);
    let (id, attempt) = match head.iter().position(|b| *b == b':') {
        Some(colon) => (&head[..colon], parse_decimal(&head[colon + 1..])?),
        None => (head, 1),
    };
    Some(Request {
        id: parse_decimal(id)?,
        attempt: u32::try_from(attempt).ok()?,
        input,
    })
}

/// Parses a request's input. Plain integers, what a `range` sends a million of, skip the
/// general JSON parser.
pub fn parse_input(text: &[u8]) -> Result<Value, String> {
    match parse_small_integer(text) {
        Some(n) => Ok(Value::from(n)),
        None => {
            serde_json::from_slice(text).map_err(|e| format!("the input is not valid JSON: {e}"))
        }
    }
}

/// A JSON integer of at most 18 digits (so it fits an `i64`), in one pass; `None` for
/// anything else, `-0` included (JSON parsers read it as a float).
fn parse_small_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + i64::from(digit);
    }
    match (negative, n) {
        (true, 0) => None,
        (true, n) => Some(-n),
        (false, n) => Some(n),
    }
}

/// A decimal number of at most 19 digits (no sign, no leading `+`).
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Nanoseconds on the monotonic clock, which runjobs and its workers share: a worker works
/// out `started_s` from runjobs' own start (passed as `--run-start-ns`).
pub fn monotonic_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}

/// The header of a frame: `count` results of items `first`… in `len` bytes that took `nanos`
/// in all, following the header (`R`) or at `journal_offset` in the journal (`J`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub first: u64,
    pub count: u64,
    pub nanos: u64,
    pub len: u64,
    pub journal_offset: Option<u64>,
}

impl FrameHeader {
    /// Bytes of a header line (newline included): fixed, so a worker can leave room for it
    /// and fill it in when the frame is complete.
    pub const fn width(journaled: bool) -> usize {
        if journaled { 89 } else { 68 }
    }

    /// Fills `out` (`width` bytes) with the header.
    pub fn write(&self, out: &mut [u8]) {
        let (first, count, nanos, len) = (self.first, self.count, self.nanos, self.len);
        let text = match self.journal_offset {
            None => format!("R {first:020} {count:010} {nanos:020} {len:012}\n"),
            Some(offset) => {
                format!("J {first:020} {count:010} {nanos:020} {len:012} {offset:020}\n")
            }
        };
        debug_assert_eq!(
            text.len(),
            FrameHeader::width(self.journal_offset.is_some())
        );
        out.copy_from_slice(text.as_bytes());
    }

    /// Parses a header line; `None` when the line is not one (or its numbers overflow the
    /// fixed width a real header has).
    pub fn parse(line: &str) -> Option<FrameHeader> {
        let line = line.trim_end_matches('\n');
        let (journaled, rest) = match line.strip_prefix("R ") {
            Some(rest) => (false, rest),
            None => (true, line.strip_prefix("J ")?),
        };
        let mut words = rest.split(' ');
        let mut number = || words.next().and_then(|w| w.parse::<u64>().ok());
        let header = FrameHeader {
            first: number()?,
            count: number()?,
            nanos: number()?,
            len: number()?,
            journal_offset: if journaled { Some(number()?) } else { None },
        };
        (words.next().is_none() && header.count > 0 && header.count <= u64::from(u32::MAX))
            .then_some(header)
    }
}

/// Appends one error reply line to `buf`.
pub fn write_error_reply(buf: &mut Vec<u8>, id: u64, nanos: u64, message: &str) {
    let mut int = itoa::Buffer::new();
    buf.extend_from_slice(int.format(id).as_bytes());
    buf.extend_from_slice(b" e ");
    buf.extend_from_slice(int.format(nanos).as_bytes());
    buf.push(b' ');
    serde_json::to_writer(&mut *buf, message).expect("a string always serializes");
    buf.push(b'\n');
}

/// One parsed reply.
#[derive(Debug)]
pub struct Reply {
    pub id: u64,
    pub result: Result<Box<RawValue>, String>,
    /// The time the call took, when the worker says.
    pub duration_s: Option<f64>,
}

/// Parses an error reply line; `None` when the line is not one.
pub fn parse_error_reply(line: &str) -> Option<Reply> {
    let line = line.trim_end_matches('\n');
    let (id, rest) = split_word(line)?;
    let (nanos, payload) = split_word(rest.strip_prefix("e ")?)?;
    let id = id.parse().ok()?;
    let nanos: u64 = nanos.parse().ok()?;
    Some(Reply {
        id,
        result: Err(serde_json::from_str::<String>(payload).ok()?),
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

/// How a batch request may say its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchInputs {
    /// Always as a list (SPEC §5's objects: workers that say `batch = true`).
    Listed,
    /// Consecutive integers `a, a+1, ... b-1` as `{"range": [a, b]}` (the Python shim, which
    /// then makes them with `range` instead of parsing a list: a `range` input's batches).
    RangesToo,
}

/// Appends one batch request line (several items) to `buf`.
pub fn write_batch_request<'a>(
    buf: &mut Vec<u8>,
    items: impl Iterator<Item = (u64, &'a Value)> + Clone,
    form: BatchInputs,
) {
    let mut ids = itoa::Buffer::new();
    let mut first = None;
    let consecutive = items.clone().enumerate().all(|(n, (id, _))| {
        let start = *first.get_or_insert(id);
        start.checked_add(n as u64) == Some(id)
    });
    match first {
        // The usual case: the ids N, N+1, ... are said by the first.
        Some(start) if consecutive => {
            buf.extend_from_slice(b"{\"first\":");
            buf.extend_from_slice(ids.format(start).as_bytes());
        }
        _ => {
            buf.extend_from_slice(b"{\"ids\":[");
            for (n, (id, _)) in items.clone().enumerate() {
                if n > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(ids.format(id).as_bytes());
            }
            buf.push(b']');
        }
    }
    if form == BatchInputs::RangesToo
        && let Some((start, end)) = consecutive_integers(items.clone().map(|(_, input)| input))
    {
        buf.extend_from_slice(b",\"inputs\":{\"range\":[");
        buf.extend_from_slice(ids.format(start).as_bytes());
        buf.push(b',');
        buf.extend_from_slice(ids.format(end).as_bytes());
        buf.extend_from_slice(b"]}}\n");
        return;
    }
    buf.extend_from_slice(b",\"inputs\":[");
    for (n, (_, input)) in items.enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut *buf, input).expect("a JSON value always serializes");
    }
    buf.extend_from_slice(b"]}\n");
}

/// Appends the batch request of a run of integer inputs for the Python shim (the
/// `BatchInputs::RangesToo` form): `{"first":N,"inputs":{"range":[start,stop]}}`, with the
/// step after `stop` unless it is 1, as Python's `range` takes them.
pub fn write_range_batch_request(buf: &mut Vec<u8>, run: &IntRun) {
    let mut int = itoa::Buffer::new();
    buf.extend_from_slice(b"{\"first\":");
    buf.extend_from_slice(int.format(run.first).as_bytes());
    buf.extend_from_slice(b",\"inputs\":{\"range\":[");
    buf.extend_from_slice(int.format(run.start).as_bytes());
    buf.push(b',');
    // One step past the last input, which may lie beyond i64 (Python's ints have no bounds).
    let stop = i128::from(run.start) + i128::from(run.count) * i128::from(run.step);
    buf.extend_from_slice(int.format(stop).as_bytes());
    if run.step != 1 {
        buf.push(b',');
        buf.extend_from_slice(int.format(run.step).as_bytes());
    }
    buf.extend_from_slice(b"]}}\n");
}

/// `(a, b)` when `inputs` are the integers `a, a+1, ... b-1` (two or more of them).
fn consecutive_integers<'a>(mut inputs: impl Iterator<Item = &'a Value>) -> Option<(i64, i64)> {
    let start = inputs.next()?.as_i64()?;
    let mut end = start.checked_add(1)?;
    for input in inputs {
        if input.as_i64() != Some(end) {
            return None;
        }
        end = end.checked_add(1)?;
    }
    (end - start >= 2).then_some((start, end))
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
/// optional and `null` where an item has none; the ids listed, or `first` for the ids
/// `first`, `first + 1`, ... `duration_s` is the whole batch's time, spread evenly over
/// its items.
#[derive(Deserialize)]
struct JsonBatch {
    #[serde(default)]
    ids: Option<Vec<u64>>,
    #[serde(default)]
    first: Option<u64>,
    outputs: Vec<Option<Box<RawValue>>>,
    #[serde(default)]
    errors: Option<Vec<Option<Value>>>,
    #[serde(default)]
    duration_s: Option<f64>,
}

/// A batch answer whose items all succeeded (`{"first": N, "outputs": [...]}` with no
/// `errors`): the outputs stay the text the worker wrote, one line's buffer for them all, so
/// a slot can render the records without an allocation per item. The shim's `ints` form
/// (`{"first": N, "ints": "HEX"}`) becomes the integers' decimals, in one buffer likewise.
#[derive(Debug)]
pub struct OkBatch {
    pub first: u64,
    /// The line, or the text of its `ints`.
    line: String,
    /// Where each output is in `line`.
    outputs: Vec<(u32, u32)>,
    /// The whole batch's time, when the worker says.
    pub duration_s: Option<f64>,
}

/// `OkBatch`'s line, borrowed.
#[derive(Deserialize)]
struct OkBatchLine<'a> {
    first: u64,
    #[serde(default, borrow)]
    outputs: Option<Vec<&'a RawValue>>,
    /// The Python shim's form of outputs that are all 64-bit integers: their little-endian
    /// bytes, in hex (cheaper for Python to write than their decimals).
    #[serde(default, borrow)]
    ints: Option<&'a str>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default, borrow)]
    ids: Option<&'a RawValue>,
    #[serde(default, borrow)]
    errors: Option<&'a RawValue>,
}

impl OkBatch {
    /// The batch in `line`, if it is a `first` batch without errors (anything else, broken
    /// lines included, is for `parse_json_replies` to judge).
    pub fn parse(line: String) -> Result<OkBatch, String> {
        if !line.starts_with("{\"first\"") || line.len() > u32::MAX as usize {
            return Err(line);
        }
        let parsed = match serde_json::from_str::<OkBatchLine<'_>>(&line) {
            Ok(parsed) if parsed.ids.is_none() && parsed.errors.is_none() => parsed,
            _ => return Err(line),
        };
        let (first, duration_s) = (parsed.first, parsed.duration_s);
        let (text, outputs) = match (&parsed.outputs, parsed.ints) {
            (Some(outputs), None) => {
                let base = line.as_ptr() as usize;
                let outputs = outputs
                    .iter()
                    .map(|raw| {
                        let start = raw.get().as_ptr() as usize - base;
                        (start as u32, (start + raw.get().len()) as u32)
                    })
                    .collect();
                (None, outputs)
            }
            (None, Some(hex)) => match ints_as_text(hex) {
                Some((text, outputs)) => (Some(text), outputs),
                None => return Err(line),
            },
            _ => return Err(line),
        };
        let count = outputs.len() as u64;
        if count == 0 || first.checked_add(count).is_none() {
            return Err(line);
        }
        Ok(OkBatch {
            first,
            line: text.unwrap_or(line),
            outputs,
            duration_s,
        })
    }

    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Output `i`'s JSON text.
    pub fn output(&self, i: usize) -> &str {
        let (start, end) = self.outputs[i];
        &self.line[start as usize..end as usize]
    }

    /// The outputs' JSON text, as the worker wrote them, with what separates them: the
    /// batch's `outputs` array, without its brackets.
    pub fn outputs_text(&self) -> &str {
        let start = self.outputs.first().map_or(0, |o| o.0);
        let end = self.outputs.last().map_or(0, |o| o.1);
        &self.line[start as usize..end as usize]
    }

    /// Each item's share of the batch's time, as `parse_json_replies` gives it.
    pub fn each_duration(&self) -> Option<f64> {
        self.duration_s
            .map(|total| total / self.len() as f64)
            .filter(|d| d.is_finite() && *d >= 0.0)
    }

    /// The batch as single replies, as `parse_json_replies` would have given it.
    pub fn into_replies(self) -> impl Iterator<Item = Reply> {
        let each = self.each_duration();
        (0..self.len()).map(move |i| Reply {
            id: self.first + i as u64,
            result: Ok(RawValue::from_string(self.output(i).to_owned())
                .expect("the output was parsed as JSON")),
            duration_s: each,
        })
    }
}

/// The integers of a batch's `ints` (each one's 8 little-endian bytes, in hex) as JSON text,
/// comma-separated, and where each one is in it; `None` unless `hex` is whole.
fn ints_as_text(hex: &str) -> Option<(String, Vec<(u32, u32)>)> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let hex = hex.as_bytes();
    if !hex.len().is_multiple_of(16) || hex.len() / 16 * 21 > u32::MAX as usize {
        return None;
    }
    let mut text = String::with_capacity(hex.len());
    let mut outputs = Vec::with_capacity(hex.len() / 16);
    let mut int = itoa::Buffer::new();
    for chunk in hex.chunks_exact(16) {
        let mut bytes = [0; 8];
        for (byte, pair) in bytes.iter_mut().zip(chunk.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        if !outputs.is_empty() {
            text.push(',');
        }
        let start = text.len() as u32;
        text.push_str(int.format(i64::from_le_bytes(bytes)));
        outputs.push((start, text.len() as u32));
    }
    Some((text, outputs))
}

/// Parses a SPEC §5 answer line (or a batch line) into `out`; false when the line is not
/// one. A missing `output` is null; an `error` that is not a string is shown as JSON.
pub fn parse_json_replies(line: &str, out: &mut Vec<Reply>) -> bool {
    if line.starts_with("{\"ids\"") || line.starts_with("{\"first\"") {
        let Ok(batch) = serde_json::from_str::<JsonBatch>(line) else {
            return false;
        };
        let n = batch.outputs.len();
        let ids: Vec<u64> = match (batch.ids, batch.first) {
            (Some(ids), None) => ids,
            (None, Some(first)) => match first.checked_add(n as u64) {
                Some(end) => (first..end).collect(),
                None => return false,
            },
            _ => return false,
        };
        if n == 0 || ids.len() != n || batch.errors.as_ref().is_some_and(|e| e.len() != n) {
            return false;
        }
        let mut errors = batch.errors.map(Vec::into_iter);
        let each = batch.duration_s.map(|total| total / n as f64);
        for (id, output) in ids.into_iter().zip(batch.outputs) {
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
        write_request(&mut buf, 7, 1, &json!({"a": [1, "x y"]}));
        assert_eq!(buf, b"7 {\"a\":[1,\"x y\"]}\n");
        let first = Request {
            id: 7,
            attempt: 1,
            input: b"{\"a\":[1,\"x y\"]}",
        };
        assert_eq!(parse_request(&buf), Some(first));
        let mut buf = Vec::new();
        write_request(&mut buf, 8, 3, &json!(2));
        assert_eq!(buf, b"8:3 2\n");
        let retry = Request {
            id: 8,
            attempt: 3,
            input: b"2",
        };
        assert_eq!(parse_request(b"8:3 2\n"), Some(retry));
        for bad in [
            "8:x 2\n",
            "x 2",
            "8",
            "99999999999999999999 1",
            "8:99999999999 1",
        ] {
            assert_eq!(parse_request(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn inputs_parse_as_json_would() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "18446744073709551615",
            "99999999999999999999",
            "1.5",
            "1e3",
            "\"x\"",
            "[1,2]",
            "{\"a\":null}",
            " 3",
        ] {
            let ours = parse_input(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
        for bad in ["", "-", "01x", "007", "--1", "{"] {
            assert!(parse_input(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_requests_round_trip() {
        for run in [
            IntRun {
                first: 0,
                start: 0,
                step: 1,
                count: 1024,
            },
            IntRun {
                first: 7,
                start: i64::MIN,
                step: i64::MAX,
                count: 3,
            },
        ] {
            let mut buf = Vec::new();
            write_run_request(&mut buf, &run);
            assert_eq!(parse_run_request(&buf), Some(run));
            assert!(parse_request(&buf).is_none_or(|r| parse_input(r.input).is_err()));
        }
        for bad in [
            "1*0 1 1",
            "1*2 1",
            "1*2 1 1 1",
            "x*2 1 1",
            "1 2",
            "18446744073709551615*2 0 1",
        ] {
            assert_eq!(parse_run_request(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn frame_headers_round_trip_at_a_fixed_width() {
        for journal_offset in [None, Some(0), Some(u64::MAX)] {
            let header = FrameHeader {
                first: u64::MAX,
                count: 3,
                nanos: 12,
                len: 999,
                journal_offset,
            };
            let mut buf = vec![0; FrameHeader::width(journal_offset.is_some())];
            header.write(&mut buf);
            let line = std::str::from_utf8(&buf).unwrap();
            assert_eq!(FrameHeader::parse(line), Some(header));
        }
        for bad in [
            "R 1 0 1 1",
            "R 1 2 3",
            "R 1 2 3 4 5",
            "J 1 2 3 4",
            "J 1 2 3 4 5 6",
            "J 1 0 3 4 5",
            "R a 1 1 1",
            "1 o 5 2",
            "R ",
        ] {
            assert_eq!(FrameHeader::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn error_replies_round_trip() {
        let mut buf = Vec::new();
        write_error_reply(&mut buf, 4, 1500, "bad \"x\"\nhere");
        let line = String::from_utf8(buf).unwrap();
        let err = parse_error_reply(&line).unwrap();
        assert_eq!(err.id, 4);
        assert_eq!(err.result.unwrap_err(), "bad \"x\"\nhere");
        assert!((err.duration_s.unwrap() - 1.5e-6).abs() < 1e-12);
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
        use BatchInputs::{Listed, RangesToo};
        let mut buf = Vec::new();
        let inputs = [json!(1), json!("two")];
        write_batch_request(
            &mut buf,
            [(4, &inputs[0]), (5, &inputs[1])].into_iter(),
            RangesToo,
        );
        assert_eq!(buf, b"{\"first\":4,\"inputs\":[1,\"two\"]}\n");
        buf.clear();
        write_batch_request(
            &mut buf,
            [(4, &inputs[0]), (6, &inputs[1])].into_iter(),
            Listed,
        );
        assert_eq!(buf, b"{\"ids\":[4,6],\"inputs\":[1,\"two\"]}\n");
        // Consecutive integers go as a range to the shim, and as a list to anyone else.
        let ints = [json!(-1), json!(0), json!(1)];
        let items = || ints.iter().enumerate().map(|(n, v)| (10 + n as u64, v));
        buf.clear();
        write_batch_request(&mut buf, items(), RangesToo);
        assert_eq!(buf, b"{\"first\":10,\"inputs\":{\"range\":[-1,2]}}\n");
        buf.clear();
        write_batch_request(&mut buf, items(), Listed);
        assert_eq!(buf, b"{\"first\":10,\"inputs\":[-1,0,1]}\n");
        // Not a range: a gap, a float, one item alone.
        for inputs in [
            vec![json!(1), json!(3)],
            vec![json!(1), json!(2.0)],
            vec![json!(5)],
        ] {
            buf.clear();
            let items = inputs.iter().enumerate().map(|(n, v)| (n as u64, v));
            write_batch_request(&mut buf, items, RangesToo);
            assert!(!buf.windows(5).any(|w| w == b"range"), "{inputs:?}");
        }
    }

    #[test]
    fn a_batch_line_may_name_its_ids_by_the_first() {
        let mut out = Vec::new();
        assert!(parse_json_replies(
            r#"{"first":7,"outputs":[1,2],"duration_s":0.2}"#,
            &mut out
        ));
        assert_eq!(out.iter().map(|r| r.id).collect::<Vec<_>>(), [7, 8]);
        assert_eq!(out[1].duration_s, Some(0.1));
        for bad in [
            r#"{"first":7,"ids":[7],"outputs":[1]}"#,
            r#"{"first":7,"outputs":[]}"#,
            r#"{"first":18446744073709551615,"outputs":[1,2]}"#,
            r#"{"first":-1,"outputs":[1]}"#,
        ] {
            assert!(!parse_json_replies(bad, &mut out), "{bad}");
        }
    }

    #[test]
    fn an_all_ok_batch_keeps_its_outputs_as_written_and_gives_what_the_replies_would() {
        let line = r#"{"first":7,"outputs":[1, {"a": [2.50, "é"]},null],"duration_s":0.3}"#;
        let batch = OkBatch::parse(format!("{line}\n")).unwrap();
        assert_eq!(batch.first, 7);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.output(1), r#"{"a": [2.50, "é"]}"#);
        assert_eq!(batch.output(2), "null");
        assert!((batch.each_duration().unwrap() - 0.1).abs() < 1e-12);
        let mut expected = Vec::new();
        assert!(parse_json_replies(line, &mut expected));
        let replies: Vec<Reply> = batch.into_replies().collect();
        assert_eq!(replies.len(), expected.len());
        for (got, want) in replies.iter().zip(&expected) {
            assert_eq!(got.id, want.id);
            assert_eq!(got.duration_s, want.duration_s);
            let text = |r: &Reply| r.result.as_ref().unwrap().get().to_owned();
            assert_eq!(text(got), text(want));
        }
        // Anything else is for `parse_json_replies` to judge, and comes back whole.
        for other in [
            r#"{"first":1,"outputs":[1,2],"errors":[null,"bad"]}"#,
            r#"{"first":1,"ids":[1,2],"outputs":[1,2]}"#,
            r#"{"first":1,"outputs":[]}"#,
            r#"{"first":18446744073709551615,"outputs":[1,2]}"#,
            r#"{"ids":[1,2],"outputs":[1,2]}"#,
            r#"{"first":1,"outputs":[1,2"#,
        ] {
            assert_eq!(OkBatch::parse(other.to_owned()).unwrap_err(), other);
        }
    }

    #[test]
    fn the_shims_ints_form_gives_the_integers_decimals() {
        let ints: [i64; 5] = [0, -1, i64::MAX, i64::MIN, 12345];
        let hex: String = ints
            .iter()
            .flat_map(|i| i.to_le_bytes())
            .map(|b| format!("{b:02x}"))
            .collect();
        let line = format!(r#"{{"first":3,"ints":"{hex}","duration_s":0.5}}"#);
        let batch = OkBatch::parse(format!("{line}\n")).unwrap();
        assert_eq!(batch.first, 3);
        let outputs: Vec<&str> = (0..batch.len()).map(|i| batch.output(i)).collect();
        let decimals = [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "12345",
        ];
        assert_eq!(outputs, decimals);
        assert_eq!(batch.outputs_text(), decimals.join(","));
        assert!((batch.each_duration().unwrap() - 0.1).abs() < 1e-12);
        let replies: Vec<Reply> = batch.into_replies().collect();
        assert_eq!(replies[4].id, 7);
        assert_eq!(replies[4].result.as_ref().unwrap().get(), "12345");
        // Anything but whole lowercase hex of 8-byte integers, alone, is not the form.
        for other in [
            r#"{"first":1,"ints":"00"}"#,
            r#"{"first":1,"ints":""}"#,
            r#"{"first":1,"ints":"zz00000000000000"}"#,
            r#"{"first":1,"ints":"0A00000000000000"}"#,
            r#"{"first":1,"ints":"0100000000000000","outputs":[1]}"#,
            r#"{"first":1,"ints":"0100000000000000","errors":[null]}"#,
            r#"{"first":18446744073709551615,"ints":"0100000000000000"}"#,
        ] {
            assert_eq!(OkBatch::parse(other.to_owned()).unwrap_err(), other);
        }
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
            "1 o 5 2",
            "1 e 5 {oops",
            "1 e 5 3",
        ] {
            assert!(parse_error_reply(line).is_none(), "{line}");
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
            "[0-9]{1,20}\\*[0-9]{1,20} -?[0-9]{1,20} -?[0-9]{1,20}",
            "R [0-9]{1,22} [0-9]{1,12} [0-9]{1,22} [0-9]{1,14}",
            "J [0-9]{1,22} [0-9]{1,12} [0-9]{1,22} [0-9]{1,14} [0-9]{1,22}",
            r#"\{"id":[0-9-]{1,22},"(output|error)":.{0,30}\}"#,
            r#"\{"ids":\[[0-9,]{0,20}\],"outputs":\[.{0,20}\](,"errors":\[.{0,20}\])?(,"duration_s":.{0,8})?\}"#,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::fuzz_cases(2000)))]

        #[test]
        fn readers_never_panic(line in reply_like()) {
            let _ = parse_error_reply(&line);
            let mut out = Vec::new();
            if parse_json_replies(&line, &mut out) {
                prop_assert!(!out.is_empty());
            }
            let _ = parse_request(line.as_bytes());
            let _ = parse_run_request(line.as_bytes());
            if let Ok(value) = parse_input(line.as_bytes()) {
                let theirs: Value = serde_json::from_str(&line).unwrap();
                prop_assert_eq!(value, theirs);
            }
            let _ = FrameHeader::parse(&line);
        }
    }
}
