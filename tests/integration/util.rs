//! Shared helpers: run the binary, write job files, read results, look for leftover processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_runjobs");

/// A `runjobs` command with a hang guard.
pub fn runjobs() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(BIN);
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// The repository root (shipped jobs live in `jobs/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `body` as `name` in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, body).unwrap();
    path
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

/// The `results` array of task number `task`.
pub fn results(doc: &Value, task: usize) -> &Vec<Value> {
    doc["tasks"][task]["results"]
        .as_array()
        .expect("results is an array")
}

/// The `output` of each result, in order.
pub fn outputs(doc: &Value, task: usize) -> Vec<Value> {
    results(doc, task)
        .iter()
        .map(|r| r["output"].clone())
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Pids of live processes whose environment holds `RUNJOBS_TEST_MARKER=marker` (the tests set
/// it on runjobs; every child inherits it). Zombies are ignored: they are gone, only not yet
/// reaped by init.
pub fn processes_with_marker(marker: &str) -> Vec<u32> {
    let needle = format!("RUNJOBS_TEST_MARKER={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie
            && environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// Waits (up to `limit`) until no process carries `marker`; returns those still alive.
pub fn wait_until_gone(marker: &str, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let alive = processes_with_marker(marker);
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A marker unique to this test process and `name`.
pub fn marker(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// Child pids of `pid` whose command line contains `needle`.
pub fn children_matching(pid: u32, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == pid && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(child);
        }
    }
    found
}

/// Runs `runjobs ARGS` while sampling its peak resident memory (VmHWM, KiB) from /proc.
/// Returns the exit code and the peak.
pub fn run_measuring_peak_rss(args: &[&std::ffi::OsStr]) -> (Option<i32>, u64) {
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `runjobs JOB [-o OUT]` in the background with `RUNJOBS_TEST_MARKER=marker`, stderr
/// discarded.
pub fn spawn_marked(job: &Path, out: Option<&Path>, marker: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg(job);
    if let Some(out) = out {
        cmd.arg("-o").arg(out);
    }
    cmd.env("RUNJOBS_TEST_MARKER", marker)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (up to 10 s) until `pid` has at least `count` builtin worker children; returns them.
pub fn wait_for_workers(pid: u32, count: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let workers = children_matching(pid, "__worker");
        if workers.len() >= count || Instant::now() >= deadline {
            return workers;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Python that imports `modules`, or `None` (after saying why) when there is none here.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = std::env::var_os("RUNJOBS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".ci/venv/bin/python"));
    let imports = format!("import {}", modules.join(", "));
    let works = Command::new(&python)
        .args(["-c", &imports])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let why = format!("{} cannot `{imports}`", python.display());
    assert!(
        std::env::var_os("RUNJOBS_REQUIRE_PYTOOLS").is_none(),
        "RUNJOBS_REQUIRE_PYTOOLS is set but {why}"
    );
    eprintln!("skipped: {why} (run .ci/run, or set RUNJOBS_TEST_PYTHON)");
    None
}

/// Runs Python code in `dir`; its trimmed stdout (it must succeed).
pub fn run_python(python: &Path, dir: &Path, code: &str) -> String {
    let output = Command::new(python)
        .current_dir(dir)
        .args(["-c", code])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{code}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
