//! Output that cannot be written: a folder removed mid-run, a full disk, a read-only folder.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tmpfs mounted at `dir` for the life of the value (root only).
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 64 KiB tmpfs at `dir/out`, or `None` (with a note) where the machine does not allow one.
fn small_output_folder(dir: &Path) -> Option<Mount> {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return None;
    }
    let mount = Mount::tmpfs(&dir.join("out"), "size=64k");
    if mount.is_none() {
        eprintln!("skipped: this machine does not allow mounting a tmpfs");
    }
    mount
}

/// Runs `job`, which cannot write its results where it should (exit 1); returns its stderr.
fn run_failing_to_write(job: &Path) -> String {
    let output = runjobs().arg(job).arg("--progress=never").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    stderr(&output)
}

/// Items of `bytes` bytes of output each, appending their input to `calls.txt`.
fn job_writing(dir: &Path, items: usize, bytes: usize, seconds: f64) -> std::path::PathBuf {
    write(
        dir,
        "job.toml",
        &format!(
            "workers = 2\n[output]\npath = \"out/results.json\"\n\
             [functions.f]\n\
             command = [\"sh\", \"-c\", \"echo $1 >> calls.txt; sleep {seconds}; head -c {bytes} /dev/zero | tr '\\\\0' x\", \"sh\", \"{{input}}\"]\n\
             [[task]]\nfunction = \"f\"\ninputs = {{ range = [0, {items}] }}\n"
        ),
    )
}

fn calls(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("calls.txt"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// Checks the fallback results file named on stderr: every item ok, with its full output.
fn assert_fallback_holds_everything(stderr: &str, expected: &Path, items: usize, bytes: usize) {
    assert!(
        stderr.contains(&format!(
            "every result is in the fallback file {}",
            expected.display()
        )),
        "{stderr}"
    );
    let doc = read_json(expected);
    let results = results(&doc, 0);
    assert_eq!(results.len(), items);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        assert_eq!(r["status"], "ok");
        assert_eq!(r["output"].as_str().unwrap().len(), bytes);
    }
}

#[test]
fn output_folder_removed_mid_run_sends_results_to_a_fallback_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_writing(dir.path(), 8, 10, 0.1);
    let child = std::process::Command::new(BIN)
        .arg(&job)
        .arg("--progress=never")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls(dir.path()) < 3 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert!(stderr.contains("results could not be written"), "{stderr}");
    // The job's folder is the first fallback.
    assert_fallback_holds_everything(&stderr, &dir.path().join("results.json"), 8, 10);
    assert_eq!(calls(dir.path()), 8);
    assert!(!dir.path().join("results.json.journal").exists());
}

#[test]
fn a_full_disk_moves_the_journal_and_the_results_to_a_fallback_folder() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = small_output_folder(dir.path()) else {
        return;
    };
    // 100 items of 2 KB: three times what the 64 KiB folder holds.
    let job = job_writing(dir.path(), 100, 2000, 0.0);
    let stderr = run_failing_to_write(&job);
    assert!(
        stderr.contains("cannot write the journal") && stderr.contains("it continues in"),
        "{stderr}"
    );
    assert_fallback_holds_everything(&stderr, &dir.path().join("results.json"), 100, 2000);
    assert_eq!(calls(dir.path()), 100);
}

/// Builtin workers append their records to the journal themselves; on a full disk they send
/// them through the pipe instead, and nothing is lost.
#[test]
fn a_full_disk_sends_builtin_records_through_the_pipe_and_loses_none() {
    let padding = "x".repeat(2000);
    let function = format!("builtin = \"format\"\ntemplate = \"{padding}{{input}}\"");
    full_disk_loses_none_of(&function, &padding);
}

/// The records of a Python worker's batches are journaled by its slot; on a full disk they go
/// through the collector instead, which moves the journal, and nothing is lost.
#[test]
fn a_full_disk_loses_none_of_a_python_workers_batches() {
    let padding = "x".repeat(2000);
    let dir = tempfile::tempdir().unwrap();
    let fns = write(
        dir.path(),
        "fns.py",
        &format!("def pad(x):\n    return '{padding}' + str(x)\n"),
    );
    full_disk_loses_none_of(&format!("python = \"{}:pad\"", fns.display()), &padding);
}

/// 300 outputs of 2 KB and more from `function` (`pad`, giving PADDING + its input): ten
/// times what the output folder holds. Every result is in the fallback file.
fn full_disk_loses_none_of(function: &str, padding: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = small_output_folder(dir.path()) else {
        return;
    };
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "workers = 2\n[output]\npath = \"out/results.json\"\n\
             [functions.pad]\n{function}\n\
             [[task]]\nfunction = \"pad\"\ninputs = {{ range = [0, 300] }}\n"
        ),
    );
    let stderr = run_failing_to_write(&job);
    let fallback = dir.path().join("results.json");
    assert!(
        stderr.contains(&format!(
            "every result is in the fallback file {}",
            fallback.display()
        )),
        "{stderr}"
    );
    let doc = read_json(&fallback);
    let results = results(&doc, 0);
    assert_eq!(results.len(), 300);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        assert_eq!(r["status"], "ok");
        assert_eq!(r["output"], format!("{padding}{i}"));
    }
}

#[test]
fn a_read_only_output_folder_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let _mount;
    if is_root() {
        // Permissions do not stop root; a read-only file system does.
        _mount = Mount::tmpfs(&out, "ro");
        if _mount.is_none() {
            eprintln!("skipped: this machine does not allow mounting a tmpfs");
            return;
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let job = job_writing(dir.path(), 3, 1, 0.0);
    let from_job_file = runjobs().arg(&job).output().unwrap();
    assert_eq!(from_job_file.status.code(), Some(2));
    assert!(
        stderr(&from_job_file).contains("cannot write the output `out/results.json`"),
        "{}",
        stderr(&from_job_file)
    );
    let elsewhere = write(
        dir.path(),
        "other.toml",
        "[functions.f]\ncommand = [\"sh\", \"-c\", \"echo $1 >> calls.txt\", \"sh\", \"{input}\"]\n[[task]]\nfunction = \"f\"\ninputs = [1]\n",
    );
    let from_flag = runjobs()
        .arg(&elsewhere)
        .arg("-o")
        .arg(out.join("x.json"))
        .output()
        .unwrap();
    assert_eq!(from_flag.status.code(), Some(2));
    assert!(
        stderr(&from_flag).contains("cannot write the output"),
        "{}",
        stderr(&from_flag)
    );
    assert_eq!(calls(dir.path()), 0, "nothing ran");
}
