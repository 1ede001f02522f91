//! Admission gates: `[admit] memfree` / `load` and `--memfree` / `--load` hold new items back
//! while the machine is short of memory or busy; running items go on. The machine is faked
//! with `RUNJOBS_PROC_MEMINFO` and `RUNJOBS_PROC_LOADAVG`, which the tests rewrite mid-run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{BIN, read_json, results, runjobs, stderr, write};

fn meminfo(path: &Path, available_kib: u64) {
    let text =
        format!("MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:   {available_kib} kB\n");
    // Written whole and renamed, so runjobs never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn loadavg(path: &Path, one_minute: f64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{one_minute:.2} 0.50 0.40 1/200 12345\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits (up to 20 s) until `path` has at least `lines` lines; returns them.
fn wait_for_lines(path: &Path, lines: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let got: Vec<String> = text.lines().map(str::to_owned).collect();
        if got.len() >= lines || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `runjobs JOB -o OUT --progress never` with the fake machine files.
fn start(job: &Path, out: &Path, meminfo: &Path, loadavg: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .arg(job)
        .arg("-o")
        .arg(out)
        .args(["--progress", "never"])
        .args(extra)
        .env("RUNJOBS_PROC_MEMINFO", meminfo)
        .env("RUNJOBS_PROC_LOADAVG", loadavg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().unwrap();
    (output.status.code(), stderr(&output))
}

struct Machine {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    meminfo: PathBuf,
    loadavg: PathBuf,
}

fn machine() -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let m = Machine {
        meminfo: path.join("meminfo"),
        loadavg: path.join("loadavg"),
        dir: path,
        _dir: dir,
    };
    meminfo(&m.meminfo, 8_000_000);
    loadavg(&m.loadavg, 0.1);
    m
}

#[test]
fn memfree_above_the_machines_memory_is_a_validation_error() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let job = write(
        dir.path(),
        "greedy.toml",
        &format!(
            "[admit]\nmemfree = \"1000TiB\"\n\n[functions.touch]\ncommand = [\"touch\", \"{}\"]\n\n[[task]]\nfunction = \"touch\"\ninputs = [1]\n",
            marker.display()
        ),
    );
    let out = runjobs().arg(&job).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("more than this machine's memory"), "{err}");
    assert!(err.contains("greedy.toml:2:11"), "{err}");
    assert!(err.contains("key: admit.memfree"), "{err}");
    assert!(!marker.exists(), "nothing runs");

    // The same bound as a flag, on a job without one.
    let plain = write(
        dir.path(),
        "plain.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    let out = runjobs()
        .arg(&plain)
        .args(["--memfree", "1000TiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("more than this machine's memory"),
        "{}",
        stderr(&out)
    );
    let out = runjobs()
        .arg(&plain)
        .args(["--load", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("above 0"), "{}", stderr(&out));
}

#[test]
fn bad_admit_values_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "bad.toml",
        "[admit]\nmemfree = \"lots\"\nload = 0\nloda = 1\n\n[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    let out = runjobs().arg("validate").arg(&job).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid memory size `lots` for `admit.memfree`"),
        "{err}"
    );
    assert!(err.contains("bad.toml:2:11"), "{err}");
    assert!(err.contains("`admit.load` must be more than 0"), "{err}");
    assert!(
        err.contains("unknown key `loda`") && err.contains("did you mean `load`"),
        "{err}"
    );
}

/// The gate closes while items run (item 0 closes it), holds every new item back while the
/// item running beside it finishes, and lets them start once it opens; the status line says
/// why the run waits.
#[test]
fn a_memory_gate_that_closes_mid_run_holds_new_items_until_it_opens() {
    let m = machine();
    let starts = m.dir.join("starts");
    let ended = m.dir.join("ended");
    let script = format!(
        "echo \"$1 $(date +%s.%N)\" >> {starts}\n\
         if [ \"$1\" = 0 ]; then printf 'MemTotal: 16000000 kB\\nMemAvailable: 1000 kB\\n' > {mem}.tmp && mv {mem}.tmp {mem}; fi\n\
         if [ \"$1\" = 1 ]; then sleep 0.6; echo done > {ended}; fi",
        starts = starts.display(),
        mem = m.meminfo.display(),
        ended = ended.display()
    );
    let job = write(
        &m.dir,
        "gate.toml",
        &format!(
            "[admit]\nmemfree = \"1GiB\"\n\n[functions.step]\ncommand = [{script:?}]\nshell = true\n\n[[task]]\nfunction = \"step\"\nworkers = 2\ninputs = {{ range = [0, 5] }}\n"
        ),
    );
    let out = m.dir.join("out.json");
    let child = start(&job, &out, &m.meminfo, &m.loadavg, &[]);
    assert_eq!(
        wait_for_lines(&starts, 2).len(),
        2,
        "items 0 and 1 start at once"
    );
    // Item 1 runs on with the gate closed, and ends.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ended.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        ended.exists(),
        "a running item goes on while the gate is closed"
    );
    std::thread::sleep(Duration::from_millis(700));
    let held = wait_for_lines(&starts, 0);
    assert_eq!(
        held.len(),
        2,
        "no new item starts while the gate is closed: {held:?}"
    );
    let opened = now_s();
    meminfo(&m.meminfo, 8_000_000);
    let (code, err) = finish(child);
    assert_eq!(code, Some(0), "{err}");
    let lines = wait_for_lines(&starts, 5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines[2..] {
        let at: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(
            at >= opened - 0.01,
            "{line} started before the gate opened at {opened}"
        );
    }
    assert!(
        err.contains("waiting to start items: available memory 1000 KiB is below memfree = 1 GiB"),
        "{err}"
    );
    assert!(err.contains("starting items again"), "{err}");
    let doc = read_json(&out);
    assert!(
        results(&doc, 0).iter().all(|r| r["status"] == "ok"),
        "{doc}"
    );
}

/// `--load` holds back the items of long-lived workers too (here builtins), from the start.
#[test]
fn a_load_gate_holds_builtin_items_until_the_load_falls() {
    let m = machine();
    loadavg(&m.loadavg, 400.0);
    let job = write(
        &m.dir,
        "sq.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1, 2, 3]\n",
    );
    let out = m.dir.join("out.json");
    let mut child = start(&job, &out, &m.meminfo, &m.loadavg, &["--load", "1.5"]);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run waits while the load is high"
    );
    assert!(!out.exists());
    loadavg(&m.loadavg, 0.2);
    let (code, err) = finish(child);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("waiting to start items: the load is"), "{err}");
    assert!(err.contains("above load = 1.5"), "{err}");
    let doc = read_json(&out);
    let outputs: Vec<_> = results(&doc, 0)
        .iter()
        .map(|r| r["output"].clone())
        .collect();
    assert_eq!(outputs, [1, 4, 9]);
}

/// An interrupt ends a run whose gate never opens: nothing waits forever for the machine.
#[test]
fn sigint_ends_a_run_held_by_a_closed_gate() {
    let m = machine();
    meminfo(&m.meminfo, 1000);
    let job = write(
        &m.dir,
        "held.toml",
        "[admit]\nmemfree = \"1GiB\"\n\n[[task]]\nfunction = \"square\"\ninputs = [1, 2]\n",
    );
    let out = m.dir.join("out.json");
    let child = start(&job, &out, &m.meminfo, &m.loadavg, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let (code, err) = finish(child);
    assert_eq!(code, Some(3), "{err}");
    let doc = read_json(&out);
    assert!(
        results(&doc, 0).iter().all(|r| r["status"] == "skipped"),
        "{doc}"
    );
}
