//! One result as the report reads it, and how a report names an input and a status.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::record::{Status, Truncated};

/// Characters of an input shown.
const INPUT_CHARS: usize = 60;

/// One result as the report reads it (its output is never needed).
#[derive(Deserialize)]
pub struct ItemResult {
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub input: Value,
    pub status: Status,
    pub error: Option<String>,
    /// What a failed command printed on stdout, and its stderr tail.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub started_s: f64,
    #[serde(default)]
    pub duration_s: f64,
    pub worker: Option<u32>,
    /// The host that ran it (cluster runs).
    pub node: Option<String>,
    pub cpu_s: Option<f64>,
    pub max_rss_kib: Option<u64>,
    pub reused_from: Option<String>,
    /// Its output was cut at the cap.
    pub truncated: Option<Truncated>,
}

/// An input as the report shows it: a string bare, anything else as JSON, cut short.
pub fn shown(input: &Value) -> String {
    let text = match input {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = match text.char_indices().nth(INPUT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    crate::visible::visible_line(&text).into_owned()
}

pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed => "failed",
        Status::TimedOut => "timed out",
        Status::Skipped => "skipped",
    }
}

impl ItemResult {
    /// A result as the reader hands it on.
    pub fn parse(raw: &RawValue) -> Result<ItemResult, String> {
        serde_json::from_str(raw.get()).map_err(|e| format!("a result: {e}"))
    }
}
