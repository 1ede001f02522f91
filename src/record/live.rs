//! The live state of a run: a small JSON file beside the job's lock (`.{job}.runjobs.live`)
//! that the run rewrites about once a second while it goes and removes at its end, so that
//! `runjobs status` can say how far it is from another terminal, as another user, without
//! touching the run. Written whole to a temporary file and renamed, so a reader never sees
//! half of it. A run killed with SIGKILL leaves it behind: only the lock says whether its
//! writer still lives.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Summary;

/// Format version of the live-state file.
pub const VERSION: u32 = 1;

/// The live-state file of `job` whose lock is in `folder`.
pub fn path_for(folder: &Path, job: &str) -> PathBuf {
    folder.join(format!(".{job}.runjobs.live"))
}

/// What a run says of itself while it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveState {
    pub version: u32,
    pub job: String,
    pub pid: u32,
    pub started_at: String,
    /// When this state was written.
    pub updated_at: String,
    /// The results file (absolute), when the run writes one.
    #[serde(default)]
    pub results: Option<String>,
    /// The journal (absolute), when there is one.
    #[serde(default)]
    pub journal: Option<String>,
    /// Every task of the job, in order; those not started yet have no `started_at`.
    pub tasks: Vec<LiveTask>,
    /// Items running long now (over `exec::SLOW_AFTER`), longest first.
    #[serde(default)]
    pub running: Vec<LiveItem>,
    /// Why no new item starts, while an admission gate holds them back.
    #[serde(default)]
    pub waiting: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveTask {
    pub name: String,
    /// Items in the task, known once it started.
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished: bool,
    /// Its items done so far (`total` counts the finished ones).
    #[serde(default)]
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveItem {
    pub task: String,
    pub index: u64,
    /// The input, shortened.
    pub input: String,
    pub started_at: String,
}

/// Writes `state` to `path` whole: a temporary file beside it (made as any file runjobs
/// makes, readable by whoever may read the folder), then renamed over it.
pub fn write(path: &Path, state: &LiveState) -> io::Result<()> {
    let mut text = serde_json::to_vec(state).map_err(io::Error::other)?;
    text.push(b'\n');
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // Never written through a link someone left in its place.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)?;
    file.write_all(&text)?;
    drop(file);
    fs::rename(&temporary, path)
}

/// The live state at `path`; `Ok(None)` when there is none.
pub fn read(path: &Path) -> io::Result<Option<LiveState>> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a runjobs live-state file: {e}"),
        )
    })
}

/// Removes the live state at the run's end (already gone is fine).
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "nightly");
        assert!(read(&path).unwrap().is_none());
        let state = LiveState {
            version: VERSION,
            job: "nightly".into(),
            pid: 42,
            started_at: "2026-11-24T20:00:00.000Z".into(),
            updated_at: "2026-11-24T20:00:05.000Z".into(),
            results: Some("/out/n.json".into()),
            journal: Some("/out/n.json.journal".into()),
            tasks: vec![LiveTask {
                name: "t".into(),
                total: Some(10),
                started_at: Some("2026-11-24T20:00:00.000Z".into()),
                finished: false,
                summary: Summary {
                    total: 4,
                    ok: 3,
                    failed: 1,
                    ..Summary::default()
                },
            }],
            running: vec![LiveItem {
                task: "t".into(),
                index: 5,
                input: "5".into(),
                started_at: "2026-11-24T20:00:01.000Z".into(),
            }],
            waiting: None,
        };
        write(&path, &state).unwrap();
        write(&path, &state).unwrap();
        let back = read(&path).unwrap().unwrap();
        assert_eq!(back.tasks[0].summary.failed, 1);
        assert_eq!(back.running[0].index, 5);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert!(!path.exists());
        fs::write(&path, "{").unwrap();
        assert!(read(&path).is_err());
    }
}
