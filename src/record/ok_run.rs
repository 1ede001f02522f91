//! The journal line of an all-`ok` batch over a run of integer inputs (the Python shim's
//! usual answer to a `range` task): what its items share is written once, their outputs as
//! the worker wrote them, so the line is about a tenth of the size of the records it stands
//! for. Readers of the journal make the records of it (`journal::read_entries`); the
//! results file gets the records themselves.
//!
//! `{"ok_run":{"first":F,"count":C,"start":S,"step":T,"started_s":X,"duration_s":Y,
//! "worker":P},"outputs":[...]}`: items `F … F+C-1`, the inputs `S, S+T, …`, each on its
//! first attempt, started at `X` and run for `Y` seconds by process `P`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::item::write_nanos_as_seconds;
use super::{ItemRecord, Status};

/// Items `first … first+count-1` whose inputs are `start, start+step, …` (an `IntRun`, as
/// the journal knows it).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Run {
    pub first: u64,
    pub count: u64,
    pub start: i64,
    pub step: i64,
}

impl Run {
    /// Item `first + k`'s input (exact: the result is a value of the range).
    fn input(&self, k: u64) -> i64 {
        self.start.wrapping_add((k as i64).wrapping_mul(self.step))
    }
}

/// How an `ok_run` line begins (to tell it from a record's line without parsing it).
pub const START: &[u8] = b"{\"ok_run\":";

/// Appends the line (with its newline) of `run`'s items, all `ok`, which worker `worker`
/// ran, starting `started_ns` after the run started and taking `duration_ns` each;
/// `outputs` is their JSON text, comma-separated, as the worker wrote it.
pub fn write_line(
    out: &mut Vec<u8>,
    run: &Run,
    (started_ns, duration_ns): (u64, u64),
    worker: u32,
    outputs: &str,
) {
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(START);
    out.extend_from_slice(b"{\"first\":");
    out.extend_from_slice(int.format(run.first).as_bytes());
    out.extend_from_slice(b",\"count\":");
    out.extend_from_slice(int.format(run.count).as_bytes());
    out.extend_from_slice(b",\"start\":");
    out.extend_from_slice(int.format(run.start).as_bytes());
    out.extend_from_slice(b",\"step\":");
    out.extend_from_slice(int.format(run.step).as_bytes());
    // Written as the records write them, so a record made of this line reads the same.
    out.extend_from_slice(b",\"started_s\":");
    write_nanos_as_seconds(out, started_ns);
    out.extend_from_slice(b",\"duration_s\":");
    write_nanos_as_seconds(out, duration_ns);
    out.extend_from_slice(b",\"worker\":");
    out.extend_from_slice(int.format(worker).as_bytes());
    out.extend_from_slice(b"},\"outputs\":[");
    out.extend_from_slice(outputs.as_bytes());
    out.extend_from_slice(b"]}\n");
}

#[derive(Deserialize)]
struct Line<'a> {
    ok_run: Shared,
    #[serde(borrow)]
    outputs: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Shared {
    #[serde(flatten)]
    run: Run,
    started_s: f64,
    duration_s: f64,
    worker: u32,
}

/// The records an `ok_run` line stands for; `None` when `text` is not a whole one.
pub fn records(text: &[u8]) -> Option<Vec<ItemRecord>> {
    let line: Line<'_> = serde_json::from_slice(text).ok()?;
    let shared = line.ok_run;
    let run = shared.run;
    if line.outputs.len() as u64 != run.count || run.first.checked_add(run.count).is_none() {
        return None;
    }
    let records = line.outputs.iter().enumerate().map(|(k, output)| {
        let (index, input) = (run.first + k as u64, run.input(k as u64).into());
        ItemRecord {
            output: Some((*output).to_owned()),
            error: None,
            started_s: shared.started_s,
            duration_s: shared.duration_s,
            worker: Some(shared.worker),
            ..ItemRecord::without_result(index, input, Status::Ok, String::new(), 1)
        }
    });
    Some(records.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{OkRecord, OkRecordWriter};

    #[test]
    fn a_line_stands_for_the_records_it_was_written_for() {
        let run = Run {
            first: 7,
            start: -20,
            step: 5,
            count: 3,
        };
        let outputs = r#"400, {"a": [1, 2]}, "x""#;
        let mut line = Vec::new();
        write_line(&mut line, &run, (1_234_567_890, 1_500), 4242, outputs);
        assert!(line.starts_with(START) && line.ends_with(b"}\n"));
        let records = records(line.trim_ascii()).expect("the line parses");
        let writer = OkRecordWriter::new(4242, b"\n");
        let mut expected = Vec::new();
        for (k, output) in [r#"400"#, r#"{"a": [1, 2]}"#, r#""x""#].iter().enumerate() {
            let input = (-20 + 5 * k as i64).to_string();
            let record = OkRecord {
                index: 7 + k as u64,
                input: input.as_bytes(),
                attempts: 1,
                started_ns: 1_234_567_890,
                duration_ns: 1_500,
                cpu_ns: None,
            };
            writer.write_line(&mut expected, &record, |out| {
                out.extend_from_slice(output.as_bytes())
            });
        }
        let mut made = Vec::new();
        for record in &records {
            record.write_json(&mut made);
            made.push(b'\n');
        }
        assert_eq!(
            String::from_utf8(made).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn a_line_whose_outputs_do_not_match_its_count_is_not_one() {
        let run = Run {
            first: 0,
            start: 0,
            step: 1,
            count: 3,
        };
        let mut line = Vec::new();
        write_line(&mut line, &run, (0, 0), 1, "1,2");
        assert!(records(line.trim_ascii()).is_none());
        assert!(records(b"{\"ok_run\":{\"first\":0,\"cou").is_none());
    }
}
