//! `runjobs crontab JOB|DIR...`: a ready crontab line for each job that declares a
//! `schedule`, with absolute paths (cron starts in `$HOME`), `-q` so cron mails only
//! failures, and a copy of them in a log beside the results (its folder made first, so the
//! first run on a fresh checkout is logged too).

use std::path::{Path, PathBuf};

use crate::exit_code;
use crate::job::{self, Job};

/// Prints the lines; `runjobs crontab jobs/ | crontab -` installs them.
pub fn crontab(paths: &[PathBuf]) -> u8 {
    let files = match job_files(paths) {
        Ok(files) => files,
        Err(message) => {
            say!("error: {message}");
            return exit_code::INVALID;
        }
    };
    let binary = match std::env::current_exe().and_then(std::fs::canonicalize) {
        Ok(binary) => binary,
        Err(e) => {
            say!("error: cannot tell where this runjobs is: {e}");
            return exit_code::ITEMS_FAILED;
        }
    };
    let (jobs, errors) = job::load_all(&files);
    for errors in &errors {
        say!("{errors}");
    }
    if !errors.is_empty() {
        return exit_code::INVALID;
    }
    for job in &jobs {
        match &job.schedule {
            Some(schedule) => {
                let about = job
                    .description
                    .as_deref()
                    .map_or(String::new(), |d| format!(": {d}"));
                out!("# {}{about}", job.name);
                out!("{}", line(job, schedule, &binary));
            }
            None => say!("skipped `{}`: it has no `schedule`", job.file.display()),
        }
    }
    exit_code::OK
}

/// The job files named, a folder standing for the `.toml` files in it.
fn job_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let is_job = |p: &Path| p.is_file() && p.extension().is_some_and(|e| e == "toml");
        files.extend(files_in(path, is_job)?);
    }
    Ok(files)
}

/// The files of `folder` that `keep` takes, sorted; the error names the folder.
pub fn files_in(folder: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| format!("cannot read the folder `{}`: {e}", folder.display()))?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| keep(p))
        .collect();
    found.sort();
    Ok(found)
}

/// `SCHEDULE mkdir -p FOLDER; runjobs -q JOB 2>&1 | tee -a LOG`: cron mails what runjobs
/// prints, which with `-q` is only failures, and the log keeps a copy. The log's folder is
/// made first because the shell opens the log for `tee` before runjobs starts, and on a
/// fresh checkout the first run would otherwise lose its lines to `No such file or
/// directory`; `;`, not `&&`, so the run happens even if the folder cannot be made.
fn line(job: &Job, schedule: &str, binary: &Path) -> String {
    let file = std::path::absolute(&job.file).unwrap_or_else(|_| job.file.clone());
    let log = std::path::absolute(log_path(job)).unwrap_or_else(|_| log_path(job));
    let folder = log.parent().unwrap_or(Path::new("/"));
    format!(
        "{schedule} mkdir -p {}; {} -q {} 2>&1 | tee -a {}",
        quoted(folder),
        quoted(binary),
        quoted(&file),
        quoted(&log)
    )
}

/// `{job}.cron.log` beside the results (in the job's folder when their folder has
/// placeholders).
pub fn log_path(job: &Job) -> PathBuf {
    let folder = job
        .output
        .path_template
        .parent()
        .filter(|p| !p.to_string_lossy().contains('{'))
        .unwrap_or(&job.dir);
    folder.join(format!("{}.cron.log", job.name))
}

/// A path for a crontab line: single-quoted for `sh` when it needs it, `%` escaped (cron
/// turns a bare `%` into a newline).
fn quoted(path: &Path) -> String {
    let text = path.display().to_string().replace('%', "\\%");
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@\\%".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
