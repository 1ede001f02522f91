//! Where one job's results go: `-o`, `--resume OUTPUT` or `[output] path`, the format, the
//! path's placeholders filled in, and the overlap locks beside it (the job's, the output's).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cli::RunArgs;
use crate::job::{Format, Job, Outline, normalize};
use crate::output::Destination;
use crate::process::lock;

impl RunArgs {
    pub fn output_has_job_placeholder(&self) -> bool {
        self.output
            .as_ref()
            .is_some_and(|p| p.to_string_lossy().contains("{job}"))
    }
}

/// Where one job's results go, with the path template still unfilled.
pub struct OutputTarget {
    /// `None`: standard output.
    pub template: Option<PathBuf>,
    pub format: Format,
    /// The job file's own `[output] path` (not `-o` or `--resume`'s): its history is kept
    /// (`keep`, the `latest` link).
    pub own: bool,
    /// No results at all: a one-liner without `-o` (no file, no journal, no lock).
    pub discard: bool,
}

/// The lock of a job's runs into its own `[output] path` (no `-o`): where `runjobs status`
/// looks for the job's run, its live state and its run index.
pub fn own_lock_path(job: &Outline) -> PathBuf {
    lock_beside(Some(&job.path_template), &job.dir, &job.name)
}

/// The overlap lock's file: beside the results (the template's folder, so runs writing
/// timestamped files still share it), or beside the job file for standard output.
fn lock_beside(template: Option<&Path>, job_dir: &Path, job: &str) -> PathBuf {
    let folder = template
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty() && !p.to_string_lossy().contains('{'))
        .map_or_else(|| job_dir.to_owned(), normalize);
    lock::path_for(&folder, job)
}

impl OutputTarget {
    pub fn decide(job: &Job, args: &RunArgs) -> Result<OutputTarget, String> {
        // `--resume OUTPUT` completes OUTPUT unless `-o` says otherwise (a journal named
        // there completes the results file it is beside).
        let resumed = args
            .resume
            .as_ref()
            .filter(|_| args.output.is_none())
            .map(|path| {
                crate::record::journal::results_path_of(path).unwrap_or_else(|| path.clone())
            });
        let output = args.output.as_ref().or(resumed.as_ref());
        let template = match output {
            Some(path) if path.as_os_str() == "-" => None,
            Some(path) => Some(path.clone()),
            None => Some(job.output.path_template.clone()),
        };
        let format = args
            .format
            .map(Format::from)
            .or(if output.is_some() {
                None
            } else {
                job.output.format
            })
            .or_else(|| {
                let ext = template.as_ref()?.extension()?.to_str()?;
                Format::from_extension(ext)
            })
            .or(if template.is_none() {
                Some(Format::Json)
            } else {
                None
            });
        match format {
            Some(format) => Ok(OutputTarget {
                template,
                format,
                own: output.is_none(),
                discard: false,
            }),
            None => Err(format!(
                "cannot tell the output format of `{}`: use a .json, .toml or .jsonl extension or `--format`",
                template.as_deref().unwrap_or(Path::new("-")).display()
            )),
        }
    }

    /// The overlap lock's file (see `lock_beside`).
    pub fn lock_path(&self, job: &Job) -> PathBuf {
        lock_beside(self.template.as_deref(), &job.dir, &job.name)
    }

    /// The output lock of `destination` (none for standard output): named after the
    /// template's file name with its times as `latest`, so that every run that could write
    /// these results, their journal or their `latest` link takes the same one. With the
    /// results' path.
    pub fn output_lock_path<'d>(
        &self,
        job: &str,
        destination: &'d Destination,
    ) -> Option<(PathBuf, &'d Path)> {
        let Destination::File(results) = destination else {
            return None;
        };
        let name = self
            .template
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())?
            .replace("{job}", job)
            .replace("{date}", "latest")
            .replace("{timestamp}", "latest");
        Some((lock::output_path_for(results, &name), results))
    }

    pub fn destination(&self, job: &str, now: SystemTime) -> Destination {
        if self.discard {
            return Destination::Discard;
        }
        let Some(template) = &self.template else {
            return Destination::Stdout;
        };
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let date = stamp.get(..10).unwrap_or_default().to_owned();
        let compact: String = stamp.chars().filter(|c| !matches!(c, '-' | ':')).collect();
        let path = template
            .to_string_lossy()
            .replace("{job}", job)
            .replace("{date}", &date)
            .replace("{timestamp}", &compact);
        Destination::File(normalize(Path::new(&path)))
    }
}
