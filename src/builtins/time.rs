//! `sleep`.

use serde_json::Value;
use std::time::Duration;

use super::Options;
use super::values::*;

/// Longest allowed sleep; anything longer is surely a unit mistake.
pub(super) const MAX_SLEEP_SECS: f64 = 365.0 * 24.0 * 3600.0;

pub(super) fn sleep(v: &Value, _: &Options) -> Result<Value, String> {
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
