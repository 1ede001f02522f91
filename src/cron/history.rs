//! What a scheduled run leaves beside its results: older results files pruned to `keep`, a
//! `latest` link to the newest, and one line a run in the run index.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::record::Summary;
use crate::record::own_file::{self, Access};

/// One line of the run index, `{folder}/{job}.history.jsonl`: every run appends one, so the
/// history outlives the results files `keep` removes, and runs refused by the lock show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexLine {
    pub job: String,
    pub started_at: String,
    /// `ok`, `failed`, `interrupted`, or `locked` (another run held the job's lock).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The results file (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    /// Why the run did not start (`locked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The run index of `job` in `folder`.
pub fn index_path(folder: &Path, job: &str) -> PathBuf {
    folder.join(format!("{job}.history.jsonl"))
}

/// Whether `path` names a run index.
pub fn is_index(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".history.jsonl"))
}

/// Appends `line` to the run index at `path`, in one write (appends never interleave).
pub fn append(path: &Path, line: &IndexLine) -> io::Result<()> {
    let mut text = serde_json::to_vec(line).map_err(io::Error::other)?;
    text.push(b'\n');
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(folder)?;
    }
    // Never through a symlink planted at its path (see `own_file`).
    own_file::open(path, Access::Append { read: false })?
        .file
        .write_all(&text)
}

/// The lines of a run index; lines that do not parse are skipped.
pub fn read_index(path: &Path) -> io::Result<Vec<IndexLine>> {
    let text = fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect())
}

/// A piece of an output file name template.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    /// `{date}`: `2026-11-24`.
    Date,
    /// `{timestamp}`: `20261124T200000Z`.
    Timestamp,
}

/// The file name of `template` (its `{job}` filled in) as pieces; `None` when it names no
/// time, so every run writes the same file and there is no history to keep.
fn pieces<'a>(name: &'a str) -> Option<Vec<Piece<'a>>> {
    let mut out = Vec::new();
    let mut rest = name;
    while let Some(at) = rest.find('{') {
        let (text, tail) = rest.split_at(at);
        if !text.is_empty() {
            out.push(Piece::Text(text));
        }
        let (piece, after) = if let Some(after) = tail.strip_prefix("{date}") {
            (Piece::Date, after)
        } else if let Some(after) = tail.strip_prefix("{timestamp}") {
            (Piece::Timestamp, after)
        } else {
            (Piece::Text(&tail[..1]), &tail[1..])
        };
        out.push(piece);
        rest = after;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out.iter()
        .any(|p| matches!(p, Piece::Date | Piece::Timestamp))
        .then_some(out)
}

/// Whether `name` is a file the pieces could have named.
fn matches(pieces: &[Piece], name: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return name.is_empty();
    };
    let (len, ok): (usize, fn(char) -> bool) = match first {
        Piece::Text(text) => {
            return name
                .strip_prefix(text)
                .is_some_and(|tail| matches(rest, tail));
        }
        Piece::Date => (10, |c| c.is_ascii_digit() || c == '-'),
        Piece::Timestamp => (16, |c| c.is_ascii_digit() || c == 'T' || c == 'Z'),
    };
    name.get(..len)
        .is_some_and(|head| head.chars().all(ok) && matches(rest, &name[len..]))
}

/// What a template names, in its folder: `(folder, pieces of the file name)`.
fn split_template(template: &str, job: &str) -> Option<(PathBuf, String)> {
    let path = Path::new(template);
    let folder = path.parent()?;
    if folder.to_string_lossy().contains('{') {
        return None; // a folder per run: not ours to prune
    }
    let name = path.file_name()?.to_string_lossy().replace("{job}", job);
    Some((folder.to_path_buf(), name))
}

/// The results files `template` named, newest first (by modification time; the name breaks
/// ties, as timestamps sort as text). `None` when the template names no time, or a folder
/// per run.
fn runs_of(template: &Path, job: &str) -> io::Result<Option<Vec<(SystemTime, PathBuf)>>> {
    let template = template.to_string_lossy();
    let Some((folder, name)) = split_template(&template, job) else {
        return Ok(None);
    };
    let Some(pieces) = pieces(&name) else {
        return Ok(None);
    };
    let mut runs: Vec<(SystemTime, PathBuf)> = fs::read_dir(&folder)?
        .flatten()
        .filter(|e| matches(&pieces, &e.file_name().to_string_lossy()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, p)| p.is_file())
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    Ok(Some(runs))
}

/// The newest earlier results file of `template` (`reuse = "latest"`): the newest file it
/// named, or, when it names no time, the one file it names. `None` when there is none yet.
pub fn newest(template: &Path, job: &str) -> Option<PathBuf> {
    match runs_of(template, job) {
        Ok(Some(runs)) => runs.into_iter().next().map(|(_, path)| path),
        // A folder that does not exist yet: a first run.
        Err(_) => None,
        Ok(None) => {
            let path = PathBuf::from(template.to_string_lossy().replace("{job}", job));
            // Its journal alone (a killed run) is worth reading too.
            let journal = crate::record::journal::path_for(&path);
            (path.is_file() || journal.is_file()).then_some(path)
        }
    }
}

/// Removes all but the newest `keep` results files of `template` (by modification time),
/// never `written` and never a file the template could not have named. Returns what went.
pub fn prune(template: &Path, job: &str, written: &Path, keep: u64) -> io::Result<Vec<PathBuf>> {
    let Some(runs) = runs_of(template, job)? else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for (_, path) in runs.into_iter().skip(keep as usize) {
        if path != written {
            fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Points `{job}-latest.json` (the template with its times as `latest`) at `written`, by a
/// relative symlink replaced atomically; `None` when the template names no time.
pub fn link_latest(template: &Path, job: &str, written: &Path) -> io::Result<Option<PathBuf>> {
    let template = template.to_string_lossy();
    let Some((folder, name)) = split_template(&template, job) else {
        return Ok(None);
    };
    if pieces(&name).is_none() {
        return Ok(None);
    }
    let latest = folder.join(
        name.replace("{date}", "latest")
            .replace("{timestamp}", "latest"),
    );
    let target = written.file_name().map(PathBuf::from).unwrap_or_default();
    let temporary = folder.join(format!(".{}.{}.link", job, std::process::id()));
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(&target, &temporary)?;
    fs::rename(&temporary, &latest)?;
    Ok(Some(latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_only_the_files_they_could_have_named() {
        let p = pieces("square-{timestamp}.json").unwrap();
        assert!(matches(&p, "square-20261124T200000Z.json"));
        assert!(!matches(&p, "square-latest.json"));
        assert!(!matches(&p, "square-20261124T200000Z.json.journal"));
        assert!(!matches(&p, "square-notes.json"));
        let p = pieces("{date}.toml").unwrap();
        assert!(matches(&p, "2026-11-24.toml"));
        assert!(!matches(&p, "2026-11-24.json"));
        assert_eq!(pieces("square.json"), None);
    }
}
