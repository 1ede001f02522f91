//! What `runjobs status` was asked about: job files (a folder standing for its job files;
//! none standing for the current folder's), or results files and journals.

use std::path::{Path, PathBuf};

use crate::job::{self, Outline};
use crate::record::journal;

/// One thing to give the status of.
pub enum Subject {
    /// A job file, by its outline.
    Job(Outline),
    /// A results file or a journal (which may not exist yet: a run in progress has only its
    /// journal).
    Output(PathBuf),
    /// A job known by its lock file in a folder of results (`.{job}.runjobs.lock`).
    Lock { lock: PathBuf, job: String },
}

/// The subjects `paths` name; the error is a bad argument (a missing file, a folder without
/// job files, a file that is neither a job file nor results).
pub fn subjects(paths: &[PathBuf]) -> Result<Vec<Subject>, String> {
    let here = [PathBuf::from(".")];
    let paths = if paths.is_empty() { &here[..] } else { paths };
    let mut subjects = Vec::new();
    for path in paths {
        if path.is_dir() {
            subjects.extend(jobs_in(path)?);
        } else {
            subjects.push(subject(path)?);
        }
    }
    Ok(subjects)
}

/// The job files of `folder`; in a folder of results (no job files), the jobs whose lock is
/// there.
fn jobs_in(folder: &Path) -> Result<Vec<Subject>, String> {
    let is_toml = |p: &Path| p.is_file() && p.extension().is_some_and(|e| e == "toml");
    let jobs: Vec<Subject> = crate::cron::files_in(folder, is_toml)?
        .iter()
        .filter_map(|file| job::outline(file).ok())
        .map(Subject::Job)
        .collect();
    if !jobs.is_empty() {
        return Ok(jobs);
    }
    let locked: Vec<Subject> = crate::cron::files_in(folder, |p| job_of_lock(p).is_some())?
        .into_iter()
        .filter_map(|lock| {
            let job = job_of_lock(&lock)?;
            Some(Subject::Lock { lock, job })
        })
        .collect();
    if locked.is_empty() {
        return Err(format!(
            "no job files in `{}`, and no job ran with its results there",
            folder.display()
        ));
    }
    Ok(locked)
}

/// The job a lock file is named for (`.{job}.runjobs.lock`).
fn job_of_lock(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let job = name.strip_prefix('.')?.strip_suffix(".runjobs.lock")?;
    (!job.is_empty()).then(|| job.to_owned())
}

fn subject(path: &Path) -> Result<Subject, String> {
    let is_journal = path.extension().is_some_and(|e| e == "journal");
    if !path.exists() {
        // A run in progress has written its journal, not its results file yet.
        if !is_journal && journal::path_for(path).is_file() {
            return Ok(Subject::Output(path.to_owned()));
        }
        return Err(format!("cannot read `{}`: no such file", path.display()));
    }
    if path.extension().is_some_and(|e| e == "toml") {
        return match job::outline(path) {
            Ok(outline) => Ok(Subject::Job(outline)),
            // A TOML results file.
            Err(_) if crate::record::read::read(path, &mut NoResults).is_ok() => {
                Ok(Subject::Output(path.to_owned()))
            }
            Err(e) => Err(format!("`{}`: {e}", path.display())),
        };
    }
    Ok(Subject::Output(path.to_owned()))
}

/// A results visitor that looks at nothing but the run's own keys.
pub struct NoResults;

impl crate::record::read::ResultsVisitor for NoResults {
    fn run(&mut self, _: &str) {}
    fn task(&mut self, _: &crate::record::read::TaskInfo) {}
    fn result(
        &mut self,
        _: &crate::record::read::TaskInfo,
        _: &serde_json::value::RawValue,
    ) -> Result<(), String> {
        Ok(())
    }
}
