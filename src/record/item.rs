//! The per-item result record, and records rendered as JSON lines: what the executor reports
//! and everything that displays, journals or writes results reads.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The final state of one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The function returned a value.
    #[default]
    Ok,
    /// The function returned an error, its process crashed or exited, or the run was
    /// interrupted while it ran.
    Failed,
    /// The item ran past its timeout and its process group was killed.
    TimedOut,
    /// The item never started (the run was interrupted first).
    Skipped,
}

impl Status {
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::TimedOut)
    }
}

/// Which captured streams of an item were cut at the cap, each with the bytes it dropped.
/// Only a command's stdout is captured whole into the output; its stderr is relayed as it
/// comes, and an error quotes only its tail, which is a tail by design.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Truncated {
    /// Bytes of stdout past the cap (`max_output`), counted and dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<u64>,
}

/// One result, as it appears in the output file (SPEC §4) and the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRecord {
    pub index: u64,
    pub input: Value,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<RawValue>>,
    /// The captured streams that were cut at the cap, and how many bytes each lost; absent
    /// when nothing was (so an output that happens to end like a truncation mark is told
    /// from one that was cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A failed command's captured stdout (trimmed, capped at `max_output` like an output):
    /// what it printed before it failed is often why. Absent when it printed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// A failed command's stderr tail (the one its `error` quotes), for programs that want
    /// it without parsing the message. Absent when it wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    pub attempts: u32,
    /// Start of the last attempt, seconds since the run started.
    #[serde(serialize_with = "micros")]
    pub started_s: f64,
    #[serde(serialize_with = "micros")]
    pub duration_s: f64,
    /// Pid of the process that ran the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
    /// CPU time (user + system, seconds) the last attempt used, where it was measured.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "micros_opt"
    )]
    pub cpu_s: Option<f64>,
    /// Peak resident memory (KiB) of the last attempt's process, where it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_kib: Option<u64>,
    /// The host that ran the last attempt (cluster runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Arc<str>>,
    /// The state of the file the input names, as it was when the item ran (SPEC §8):
    /// `mtime:SIZE:NANOS` or `sha256:HEX`. Only for inputs that name files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Arc<str>>,
    /// `--resume`, `--reuse` or `reuse` took this result from this results file (or
    /// journal) instead of running the item again; the other fields are the earlier run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<Arc<str>>,
    /// With `reused_from`: when the run that computed the result started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_at: Option<Arc<str>>,
}

/// Seconds rounded to microseconds: finer digits are noise and bloat large files.
fn micros<S: serde::Serializer>(seconds: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((seconds * 1e6).round() / 1e6)
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Skipped => "skipped",
        }
    }
}

impl ItemRecord {
    /// An item that has no result of its own: skipped, or failed without (or before) an
    /// attempt of this run, with why.
    pub fn without_result(
        index: u64,
        input: Value,
        status: Status,
        error: String,
        attempts: u32,
    ) -> ItemRecord {
        ItemRecord {
            index,
            input,
            status,
            output: None,
            truncated: None,
            error: Some(error),
            stdout: None,
            stderr: None,
            attempts,
            started_s: 0.0,
            duration_s: 0.0,
            worker: None,
            cpu_s: None,
            max_rss_kib: None,
            node: None,
            fingerprint: None,
            reused_from: None,
            computed_at: None,
        }
    }

    /// Appends the record as compact JSON.
    ///
    /// Hand-written because a million-item run spends most of its collecting time here; it
    /// writes exactly what the `Serialize` derive writes (a test checks).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut int = itoa::Buffer::new();
        out.extend_from_slice(b"{\"index\":");
        out.extend_from_slice(int.format(self.index).as_bytes());
        out.extend_from_slice(b",\"input\":");
        serde_json::to_writer(&mut *out, &self.input).expect("a JSON value always serializes");
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b'"');
        if let Some(output) = &self.output {
            out.extend_from_slice(b",\"output\":");
            out.extend_from_slice(output.get().as_bytes());
        }
        if let Some(truncated) = &self.truncated {
            out.extend_from_slice(b",\"truncated\":");
            serde_json::to_writer(&mut *out, truncated).expect("counts always serialize");
        }
        if let Some(error) = &self.error {
            out.extend_from_slice(b",\"error\":");
            serde_json::to_writer(&mut *out, error).expect("a string always serializes");
        }
        for (key, value) in [
            (&b",\"stdout\":"[..], &self.stdout),
            (b",\"stderr\":", &self.stderr),
        ] {
            if let Some(value) = value {
                out.extend_from_slice(key);
                serde_json::to_writer(&mut *out, value).expect("a string always serializes");
            }
        }
        out.extend_from_slice(b",\"attempts\":");
        out.extend_from_slice(int.format(self.attempts).as_bytes());
        out.extend_from_slice(b",\"started_s\":");
        write_seconds(out, Seconds::F64(self.started_s));
        out.extend_from_slice(b",\"duration_s\":");
        write_seconds(out, Seconds::F64(self.duration_s));
        if let Some(worker) = self.worker {
            out.extend_from_slice(b",\"worker\":");
            out.extend_from_slice(int.format(worker).as_bytes());
        }
        if let Some(cpu) = self.cpu_s {
            out.extend_from_slice(b",\"cpu_s\":");
            write_seconds(out, Seconds::F64(cpu));
        }
        if let Some(rss) = self.max_rss_kib {
            out.extend_from_slice(b",\"max_rss_kib\":");
            out.extend_from_slice(int.format(rss).as_bytes());
        }
        if let Some(node) = &self.node {
            out.extend_from_slice(b",\"node\":");
            serde_json::to_writer(&mut *out, &**node).expect("a string always serializes");
        }
        let strings = [
            (&b",\"fingerprint\":"[..], &self.fingerprint),
            (b",\"reused_from\":", &self.reused_from),
            (b",\"computed_at\":", &self.computed_at),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                out.extend_from_slice(key);
                serde_json::to_writer(&mut *out, &**value).expect("a string always serializes");
            }
        }
        out.push(b'}');
    }
}

fn micros_opt<S: serde::Serializer>(seconds: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match seconds {
        Some(seconds) => micros(seconds, s),
        None => s.serialize_none(),
    }
}

/// An `ok` result as a builtin worker renders it itself, so a million tiny results reach the
/// output without being parsed and rendered again in runjobs (see `protocol`).
pub struct OkRecord<'a> {
    pub index: u64,
    /// The input as compact JSON text (as runjobs sent it).
    pub input: &'a [u8],
    pub attempts: u32,
    /// Nanoseconds since the run started.
    pub started_ns: u64,
    pub duration_ns: u64,
    /// CPU time the item used, when the worker measured it.
    pub cpu_ns: Option<u64>,
}

/// Renders one worker's `ok` records.
pub struct OkRecordWriter {
    /// `,"worker":PID`: the same for every record of the worker.
    worker: Vec<u8>,
    /// `}` and the line's end.
    end: Vec<u8>,
}

impl OkRecordWriter {
    /// Records ending in `line_end`: `LINE_END`, or `JOURNAL_LINE_END` for records a worker
    /// appends to the journal itself.
    pub fn new(worker: u32, line_end: &[u8]) -> OkRecordWriter {
        let mut pid = b",\"worker\":".to_vec();
        pid.extend_from_slice(itoa::Buffer::new().format(worker).as_bytes());
        let mut end = b"}".to_vec();
        end.extend_from_slice(line_end);
        OkRecordWriter { worker: pid, end }
    }

    /// Appends the record's line, the output written by `output`: the same bytes
    /// `Rendered::render` gives for it (a test checks).
    pub fn write_line(
        &self,
        out: &mut Vec<u8>,
        record: &OkRecord<'_>,
        output: impl FnOnce(&mut Vec<u8>),
    ) {
        Self::write_head(out, record.index, record.input);
        output(out);
        self.write_tail(out, record);
    }

    /// What follows the output in the records of items that share their attempts and
    /// timing (a batch's items, spread evenly over its time): with `write_head`, the record
    /// is head, output, tail, as `write_line` writes it.
    pub fn shared_tail(&self, attempts: u32, started_ns: u64, duration_ns: u64) -> Vec<u8> {
        let mut tail = Vec::new();
        let record = OkRecord {
            index: 0,
            input: b"",
            attempts,
            started_ns,
            duration_ns,
            cpu_ns: None,
        };
        self.write_tail(&mut tail, &record);
        tail
    }

    /// A record's beginning, up to its output.
    pub fn write_head(out: &mut Vec<u8>, index: u64, input: &[u8]) {
        out.extend_from_slice(b"{\"index\":");
        out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
        out.extend_from_slice(b",\"input\":");
        out.extend_from_slice(input);
        out.extend_from_slice(b",\"status\":\"ok\",\"output\":");
    }

    /// A record's end, after its output.
    fn write_tail(&self, out: &mut Vec<u8>, record: &OkRecord<'_>) {
        if record.attempts == 1 {
            out.extend_from_slice(b",\"attempts\":1,\"started_s\":");
        } else {
            out.extend_from_slice(b",\"attempts\":");
            out.extend_from_slice(itoa::Buffer::new().format(record.attempts).as_bytes());
            out.extend_from_slice(b",\"started_s\":");
        }
        write_seconds(out, Seconds::Nanos(record.started_ns));
        out.extend_from_slice(b",\"duration_s\":");
        write_seconds(out, Seconds::Nanos(record.duration_ns));
        out.extend_from_slice(&self.worker);
        if let Some(cpu) = record.cpu_ns {
            out.extend_from_slice(b",\"cpu_s\":");
            write_seconds(out, Seconds::Nanos(cpu));
        }
        out.extend_from_slice(&self.end);
    }
}

/// What ends a rendered record's line.
pub const LINE_END: &[u8] = b"\n";
/// What ends the line of a record a builtin worker appends to the journal: with the comma, a
/// run of such lines is, but for its last comma, a piece of the results file's JSON array
/// (see `output::json`). Readers of the journal allow it.
pub const JOURNAL_LINE_END: &[u8] = b",\n";

/// A batch of records rendered once as JSON lines (`{...}\n` each), shared by the journal
/// and the writers: rendering is most of the collecting thread's work on a big run.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Every record's line, back to back.
    pub bytes: Vec<u8>,
    /// Where each record's line ends (after its newline).
    ends: Vec<usize>,
}

impl Rendered {
    pub fn of(records: &[ItemRecord]) -> Rendered {
        let mut rendered = Rendered::default();
        rendered.render(records);
        rendered
    }

    /// Renders `records`, replacing what was there (the buffers are reused).
    pub fn render(&mut self, records: &[ItemRecord]) {
        self.bytes.clear();
        self.ends.clear();
        for record in records {
            record.write_json(&mut self.bytes);
            self.bytes.extend_from_slice(LINE_END);
            self.ends.push(self.bytes.len());
        }
    }

    /// Takes lines rendered elsewhere (by `OkRecordWriter`, ending in `LINE_END` or
    /// `JOURNAL_LINE_END`); `None` unless the last one is whole.
    pub fn from_lines(bytes: Vec<u8>) -> Option<Rendered> {
        let ends: Vec<usize> = memchr::memchr_iter(b'\n', &bytes)
            .map(|at| at + 1)
            .collect();
        (ends.last() == Some(&bytes.len())).then_some(Rendered { bytes, ends })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The records, parsed back (a line that is not a record is left out).
    pub fn records(&self) -> Vec<ItemRecord> {
        (0..self.len())
            .filter_map(|i| serde_json::from_slice(self.json(i)).ok())
            .collect()
    }

    /// The records as a piece of a JSON array (`{...},\n{...}`), when every line ends in
    /// `JOURNAL_LINE_END`: the bytes without the last line's end.
    pub fn comma_joined(&self) -> Option<&[u8]> {
        let comma_ended = |end: &usize| self.bytes[..*end].ends_with(JOURNAL_LINE_END);
        (!self.ends.is_empty() && self.ends.iter().all(comma_ended))
            .then(|| &self.bytes[..self.bytes.len() - JOURNAL_LINE_END.len()])
    }

    /// Record `i`'s JSON, without its line's end.
    pub fn json(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let line = &self.bytes[start..self.ends[i] - 1];
        // A record is an object: a comma after its `}` is the journal's line end.
        line.strip_suffix(b",").unwrap_or(line)
    }
}

/// A time as a record holds it: seconds, or whole nanoseconds (a worker's clock).
#[derive(Clone, Copy)]
enum Seconds {
    F64(f64),
    Nanos(u64),
}

/// Writes `nanos` as seconds, as a record's times are written (`0.001759`, `1.5`, `0.0`).
pub fn write_nanos_as_seconds(out: &mut Vec<u8>, nanos: u64) {
    write_seconds(out, Seconds::Nanos(nanos));
}

/// Writes non-negative seconds with microsecond precision as a JSON number: `0.001759`,
/// `1.5`, `0.0`, exactly as `micros` renders them.
fn write_seconds(out: &mut Vec<u8>, seconds: Seconds) {
    let micros = match seconds {
        // Rounded half up, as `f64::round` does for positive numbers.
        Seconds::Nanos(nanos) => nanos / 1000 + u64::from(nanos % 1000 >= 500),
        Seconds::F64(seconds) => {
            let micros = (seconds.max(0.0) * 1e6).round();
            if micros >= 1e15 || !micros.is_finite() {
                // Absurd values (a clock jump): let the float formatter handle them.
                serde_json::to_writer(&mut *out, &(micros / 1e6))
                    .expect("a finite float serializes");
                return;
            }
            micros as u64
        }
    };
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(int.format(micros / 1_000_000).as_bytes());
    out.push(b'.');
    let fraction = micros % 1_000_000;
    if fraction == 0 {
        out.push(b'0');
        return;
    }
    // Six digits with leading zeros ("1" and the fraction's digits), then drop trailing
    // zeros.
    let digits = &int.format(1_000_000 + fraction).as_bytes()[1..];
    let len = digits
        .iter()
        .rposition(|d| *d != b'0')
        .map_or(1, |last| last + 1);
    out.extend_from_slice(&digits[..len]);
}

/// Counts over every item of a run (SPEC §4 `summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub skipped: u64,
    /// Of the `ok` ones, how many were taken from an earlier run (absent when none were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reused: u64,
    /// Items whose captured output was cut at the cap (absent when none was).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// `120 ok (118 reused)`, or `4 ok`.
    pub fn ok_text(&self) -> String {
        match self.reused {
            0 => format!("{} ok", self.ok),
            reused => format!("{} ok ({reused} reused)", self.ok),
        }
    }

    /// Counts one record.
    pub fn add_record(&mut self, record: &ItemRecord) {
        self.add(record.status);
        self.reused += u64::from(record.reused_from.is_some());
        self.truncated += u64::from(record.truncated.is_some());
    }

    pub fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Ok => self.ok += 1,
            Status::Failed => self.failed += 1,
            Status::TimedOut => self.timed_out += 1,
            Status::Skipped => self.skipped += 1,
        }
    }

    /// Counts `n` more `ok` items.
    pub fn add_ok(&mut self, n: u64) {
        self.total += n;
        self.ok += n;
    }

    pub fn merge(&mut self, other: &Summary) {
        self.total += other.total;
        self.ok += other.ok;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.skipped += other.skipped;
        self.reused += other.reused;
        self.truncated += other.truncated;
    }

    pub fn failures(&self) -> u64 {
        self.failed + self.timed_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(status: Status, seconds: f64) -> ItemRecord {
        ItemRecord {
            index: 12,
            input: json!({"a": [1, "x\"y"]}),
            status,
            output: (status == Status::Ok).then(|| RawValue::from_string("[1,2]".into()).unwrap()),
            truncated: (status == Status::Ok).then_some(Truncated {
                stdout: Some(5_000_000),
            }),
            error: (status != Status::Ok).then(|| "bad \"thing\"\n".to_owned()),
            stdout: (status == Status::Failed).then(|| "partial\nlines".to_owned()),
            stderr: (status == Status::Failed).then(|| "the tail".to_owned()),
            attempts: 2,
            started_s: seconds,
            duration_s: seconds / 3.0,
            worker: (status != Status::Skipped).then_some(4242),
            cpu_s: (status != Status::Skipped).then_some(seconds / 2.0),
            max_rss_kib: (status != Status::Skipped).then_some(20_480),
            node: (status == Status::Failed).then(|| "node-1".into()),
            fingerprint: (status != Status::Skipped).then(|| "mtime:3:1764000000123456789".into()),
            reused_from: (status == Status::Ok).then(|| "out/results.json".into()),
            computed_at: (status == Status::Ok).then(|| "2026-11-24T20:00:00.000Z".into()),
        }
    }

    #[test]
    fn hand_written_json_matches_the_derive() {
        for status in [
            Status::Ok,
            Status::Failed,
            Status::TimedOut,
            Status::Skipped,
        ] {
            for seconds in [
                0.0,
                1e-7,
                0.000_001,
                0.001_759,
                0.1,
                1.5,
                2.0,
                123.456_789_9,
                86_400.25,
            ] {
                let rec = record(status, seconds);
                let mut ours = Vec::new();
                rec.write_json(&mut ours);
                let ours: serde_json::Value = serde_json::from_slice(&ours).unwrap();
                assert_eq!(
                    ours,
                    serde_json::to_value(&rec).unwrap(),
                    "{status:?} {seconds}"
                );
            }
        }
    }

    #[test]
    fn a_workers_ok_record_is_the_line_runjobs_would_write() {
        let writer = OkRecordWriter::new(4242, LINE_END);
        let journal_writer = OkRecordWriter::new(4242, JOURNAL_LINE_END);
        for (attempts, cpu_ns) in [(1, None), (2, None), (1, Some(1_250_000))] {
            let ours = OkRecord {
                index: 12,
                input: br#"{"a":[1,"x\"y"]}"#,
                attempts,
                started_ns: 1_759_400,
                duration_ns: 2_000,
                cpu_ns,
            };
            let mut line = Vec::new();
            writer.write_line(&mut line, &ours, |out| out.extend_from_slice(b"[1,2]"));
            let theirs = ItemRecord {
                attempts,
                started_s: 0.001_759,
                duration_s: 0.000_002,
                cpu_s: cpu_ns.map(|n| n as f64 / 1e9),
                max_rss_kib: None,
                truncated: None,
                fingerprint: None,
                reused_from: None,
                computed_at: None,
                stdout: None,
                stderr: None,
                ..record(Status::Ok, 0.0)
            };
            let expected = Rendered::of(&[theirs]).bytes;
            assert_eq!(
                String::from_utf8(line.clone()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            let mut journal_line = Vec::new();
            journal_writer.write_line(&mut journal_line, &ours, |out| {
                out.extend_from_slice(b"[1,2]")
            });
            assert_eq!(journal_line, [&line[..line.len() - 1], b",\n"].concat());
            let rendered =
                Rendered::from_lines([line.clone(), journal_line.clone(), line].concat()).unwrap();
            assert_eq!(rendered.len(), 3);
            assert_eq!(rendered.json(0), rendered.json(1));
            assert_eq!(rendered.json(2).last(), Some(&b'}'));
        }
        assert!(
            Rendered::from_lines(b"{}\n{}".to_vec()).is_none(),
            "cut short"
        );
        assert!(Rendered::from_lines(Vec::new()).is_none(), "empty");
    }

    #[test]
    fn seconds_are_short() {
        let mut out = Vec::new();
        for seconds in [
            Seconds::F64(0.001_759_4),
            Seconds::F64(3.0),
            Seconds::F64(0.000_000_1),
            Seconds::Nanos(1_759_499),
            Seconds::Nanos(1_759_500),
            Seconds::Nanos(3_000_000_000),
            Seconds::Nanos(499),
        ] {
            write_seconds(&mut out, seconds);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0.001759 3.0 0.0 0.001759 0.00176 3.0 0.0 "
        );
    }
}
