//! The process exit codes of SPEC §3, in one place.

use std::process::ExitCode;

/// Every item finished ok (or there was nothing to do).
pub const OK: u8 = 0;
/// Some item failed or timed out; the results file says which.
pub const ITEMS_FAILED: u8 = 1;
/// The job file or the command line is invalid; nothing ran.
pub const INVALID: u8 = 2;
/// Stopped by SIGINT, SIGTERM or SIGHUP; partial results were written.
pub const INTERRUPTED: u8 = 3;
/// Another run of the same job holds its lock (cron overlap); nothing ran.
pub const LOCKED: u8 = 4;

pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}
