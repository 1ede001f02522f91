//! `runjobs validate` and `runjobs functions`.

use std::path::PathBuf;

use super::plan::plural;
use crate::exit_code;
use crate::job;

/// `runjobs validate JOB...`
pub fn validate(paths: &[PathBuf]) -> u8 {
    let mut code = exit_code::OK;
    for path in paths {
        match job::load(path) {
            Ok(job) => {
                let tasks = job.tasks.len();
                say!("ok: `{}` ({tasks} task{})", path.display(), plural(tasks));
            }
            Err(errors) => {
                say!("{errors}");
                code = exit_code::INVALID;
            }
        }
    }
    code
}

/// `runjobs functions`; its exit code.
pub fn list_functions() -> u8 {
    let all = crate::builtins::all();
    let width = all.iter().map(|b| b.name.len()).max().unwrap_or(0);
    let input_width = all.iter().map(|b| b.input.len()).max().unwrap_or(0);
    out!("{:width$}  {:input_width$}  OUTPUT — DOC", "NAME", "INPUT");
    for b in all {
        out!(
            "{:width$}  {:input_width$}  {} — {}",
            b.name,
            b.input,
            b.output,
            b.doc
        );
    }
    crate::exit_code::OK
}
