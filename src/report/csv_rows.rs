//! `report --csv FILE`: one row an item, for a spreadsheet, pandas or DuckDB. Rows are
//! written as the results stream by, so memory does not grow with the items.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::record::Status;
use crate::record::read::{ResultsVisitor, TaskInfo};

/// The columns, in order (README documents them).
pub const COLUMNS: [&str; 13] = [
    "task",
    "index",
    "input",
    "status",
    "output",
    "error",
    "attempts",
    "duration_s",
    "cpu_s",
    "max_rss_kib",
    "worker",
    "started_at",
    "reused_from",
];

/// One result with the fields a row shows.
#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    input: Value,
    status: Status,
    output: Option<Box<RawValue>>,
    error: Option<String>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    started_s: f64,
    #[serde(default)]
    duration_s: f64,
    cpu_s: Option<f64>,
    max_rss_kib: Option<u64>,
    worker: Option<u32>,
    reused_from: Option<String>,
}

pub struct CsvRows {
    writer: csv::Writer<BufWriter<File>>,
    /// When the run being read started: an item's `started_at` is that plus its `started_s`.
    run_start: Option<SystemTime>,
}

impl CsvRows {
    pub fn create(path: &Path) -> Result<CsvRows, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        let mut writer = csv::Writer::from_writer(BufWriter::new(file));
        writer.write_record(COLUMNS).map_err(|e| e.to_string())?;
        Ok(CsvRows {
            writer,
            run_start: None,
        })
    }

    pub fn finish(mut self) -> Result<(), String> {
        self.writer.flush().map_err(|e| e.to_string())
    }
}

/// A cell: a string as it is, a number or boolean as JSON writes it, a table or list as its
/// JSON text, nothing for null.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

impl ResultsVisitor for CsvRows {
    fn run(&mut self, started_at: &str) {
        self.run_start = humantime::parse_rfc3339_weak(started_at).ok();
    }

    fn task(&mut self, _task: &TaskInfo) {}

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let row: Row = serde_json::from_str(raw.get()).map_err(|e| format!("a result: {e}"))?;
        let output = row
            .output
            .as_ref()
            .map(|o| serde_json::from_str::<Value>(o.get()).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        let started_at = match (self.run_start, row.status) {
            // A skipped item never started.
            (_, Status::Skipped) | (None, _) => String::new(),
            (Some(start), _) => {
                let at = start + Duration::from_secs_f64(row.started_s.max(0.0));
                humantime::format_rfc3339_micros(at).to_string()
            }
        };
        let status = serde_json::to_value(row.status)
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default();
        let fields = [
            task.name.clone(),
            row.index.to_string(),
            cell(&row.input),
            status,
            cell(&output),
            row.error.unwrap_or_default(),
            row.attempts.to_string(),
            row.duration_s.to_string(),
            number(row.cpu_s),
            number(row.max_rss_kib),
            number(row.worker),
            started_at,
            row.reused_from.unwrap_or_default(),
        ];
        self.writer.write_record(&fields).map_err(|e| e.to_string())
    }
}
