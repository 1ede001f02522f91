//! The `status` command: which jobs, their status printed or as JSON; the exit code.

use std::path::PathBuf;

use super::gather;
use super::show;
use super::state::{StatusReport, VERSION};
use super::targets::{self, Subject};
use crate::exit_code;

/// `runjobs status [JOB|DIR|OUTPUT...] [--json]`. Exits 0 when every file could be read, 1
/// when something could not (what could be read is still shown), 2 for a bad argument.
pub fn status(paths: &[PathBuf], json: bool) -> u8 {
    let subjects = match targets::subjects(paths) {
        Ok(subjects) => subjects,
        Err(message) => {
            say!("error: {message}");
            return exit_code::INVALID;
        }
    };
    let mut found = Vec::new();
    for subject in &subjects {
        match subject {
            Subject::Job(outline) => found.push(gather::of_job(outline)),
            Subject::Lock { lock, job } => found.push(gather::of_lock(lock, job)),
            Subject::Output(path) => match gather::of_output(path) {
                Ok(one) => found.push(one),
                Err(message) => {
                    say!("error: {message}");
                    return exit_code::INVALID;
                }
            },
        }
    }
    let mut unread = false;
    for warning in found.iter().flat_map(|f| &f.warnings) {
        say!("warning: {warning}");
        unread = true;
    }
    let report = StatusReport {
        version: VERSION,
        jobs: found.into_iter().map(|f| f.status).collect(),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => out!("{text}"),
            Err(e) => {
                say!("error: {e}");
                return exit_code::ITEMS_FAILED;
            }
        }
    } else {
        for job in &report.jobs {
            show::print(job);
        }
    }
    if unread {
        exit_code::ITEMS_FAILED
    } else {
        exit_code::OK
    }
}
