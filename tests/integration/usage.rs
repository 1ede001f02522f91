//! Per-item resource usage in the results: `cpu_s` and `max_rss_kib` of a command's process
//! (from wait4, its waited-for children included), however it ended.

use serde_json::Value;

use crate::util::*;

/// Runs `job` (written into a fresh folder) to a JSON file; returns (exit code, results, stderr).
fn run(job: &str) -> (Option<i32>, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "job.toml", job);
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&path).arg("-o").arg(&out).output().unwrap();
    let doc = read_json(&out);
    (
        output.status.code(),
        results(&doc, 0).clone(),
        stderr(&output),
    )
}

/// A Python one-liner as a command.
fn python(code: &str) -> String {
    format!(
        "[functions.f]\ncommand = [\"python3\", \"-c\", {code:?}]\n[[task]]\nfunction = \"f\"\ninputs = [1]\n"
    )
}

const BURN: &str =
    "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass";

fn cpu(record: &Value) -> f64 {
    record["cpu_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no cpu_s in {record}"))
}

fn rss_mib(record: &Value) -> f64 {
    record["max_rss_kib"]
        .as_f64()
        .unwrap_or_else(|| panic!("no max_rss_kib in {record}"))
        / 1024.0
}

#[test]
fn cpu_s_counts_the_cpu_time_a_command_burned() {
    let (code, results, err) = run(&python(BURN));
    assert_eq!(code, Some(0), "{err}");
    let used = cpu(&results[0]);
    assert!(
        (0.4..=1.0).contains(&used),
        "cpu_s {used} for 0.5 s of burning"
    );
    // Sleeping costs no CPU.
    let (code, results, err) = run(
        "[functions.nap]\ncommand = [\"sleep\", \"0.3\"]\n[[task]]\nfunction = \"nap\"\ninputs = [1]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let r = &results[0];
    assert!(cpu(r) < 0.1, "{r}");
    assert!(r["duration_s"].as_f64().unwrap() >= 0.3, "{r}");
}

#[test]
fn max_rss_kib_is_the_peak_memory_a_command_touched() {
    let (code, results, err) = run(&python("b = b'x' * (200 << 20)"));
    assert_eq!(code, Some(0), "{err}");
    let mib = rss_mib(&results[0]);
    assert!(mib >= 200.0, "max_rss_kib {mib} MiB for 200 MiB touched");
    assert!(mib < 400.0, "max_rss_kib {mib} MiB for 200 MiB touched");
}

#[test]
fn usage_includes_the_children_a_command_waited_for() {
    // The shell burns nothing itself; its two children burn 0.3 s each.
    let burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass";
    let job = format!(
        "[functions.f]\ncommand = [\"python3 -c \\\"$2\\\" && python3 -c \\\"$2\\\"\", {burn:?}]\nshell = true\n[[task]]\nfunction = \"f\"\ninputs = [1]\n"
    );
    let (code, results, err) = run(&job);
    assert_eq!(code, Some(0), "{err}: {results:?}");
    let used = cpu(&results[0]);
    assert!(
        (0.5..=1.2).contains(&used),
        "cpu_s {used} for two children of 0.3 s"
    );
}

#[test]
fn a_command_killed_by_a_signal_still_gets_its_usage() {
    let (code, results, err) = run(&python(
        "import os, time\nb = b'x' * (100 << 20)\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass\nos.kill(os.getpid(), 9)",
    ));
    assert_eq!(code, Some(1), "{err}");
    let r = &results[0];
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("signal 9"), "{r}");
    assert!(cpu(r) >= 0.2, "{r}");
    assert!(rss_mib(r) >= 100.0, "{r}");
}

#[test]
fn a_timed_out_command_gets_its_usage_too() {
    let job = format!(
        "[functions.f]\ncommand = [\"python3\", \"-c\", {:?}]\ntimeout = \"300ms\"\nkill_grace = \"100ms\"\n[[task]]\nfunction = \"f\"\ninputs = [1]\n",
        "while True: pass"
    );
    let (code, results, err) = run(&job);
    assert_eq!(code, Some(1), "{err}");
    let r = &results[0];
    assert_eq!(r["status"], "timed_out", "{r}");
    assert!(cpu(r) >= 0.1, "{r}");
}

#[test]
fn long_lived_workers_report_the_cpu_time_of_each_slow_item() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "import time\n\ndef burn(s):\n    t = time.process_time()\n    while time.process_time() - t < s:\n        pass\n    return s\n",
    );
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.burn]\npython = \"fns.py:burn\"\n\
         [[task]]\nfunction = \"burn\"\nworkers = 1\ninputs = [0.01, 0.4, 0.05]\n\
         [[task]]\nname = \"nap\"\nfunction = \"sleep\"\nworkers = 1\ninputs = [0.3]\n",
    );
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&out);
    // The first item a Python worker runs also pays for its start; the others are their own.
    let burned = results(&doc, 0);
    let heavy = cpu(&burned[1]);
    assert!((0.3..=0.8).contains(&heavy), "{}", burned[1]);
    let light = cpu(&burned[2]);
    assert!((0.03..=0.3).contains(&light), "{}", burned[2]);
    assert!(
        burned.iter().all(|r| r.get("max_rss_kib").is_none()),
        "{burned:?}"
    );
    // A builtin that sleeps uses next to no CPU.
    let nap = &results(&doc, 1)[0];
    assert!(cpu(nap) < 0.05, "{nap}");
}
