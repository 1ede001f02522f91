//! Failure policy: `max_failures`, `--fail-fast` and `deadline`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn statuses(doc: &Value) -> Vec<String> {
    results(doc, 0)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

const FAILING: &str = "[functions.fail]\ncommand = [\"sh\", \"-c\", \"exit 1\"]\n\
                       [[task]]\nfunction = \"fail\"\nworkers = 1\ninputs = [1, 2, 3, 4, 5, 6]\n";

#[test]
fn max_failures_stops_dispatching_once_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!("max_failures = 2\n{FAILING}"),
    );
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let doc = read_json(&out);
    assert_eq!(
        statuses(&doc),
        [
            "failed", "failed", "failed", "skipped", "skipped", "skipped"
        ]
    );
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["summary"]["skipped"], 3);
    let skipped = results(&doc, 0)[3]["error"].as_str().unwrap();
    assert!(
        skipped.contains("more than 2 items failed (max_failures = 2)"),
        "{skipped}"
    );
    assert!(
        stderr(&output).contains("(stopped: more than 2 items failed"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", FAILING);
    let out = dir.path().join("out.json");
    runjobs()
        .arg(&job)
        .arg("--fail-fast")
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let doc = read_json(&out);
    assert_eq!(
        statuses(&doc),
        [
            "failed", "skipped", "skipped", "skipped", "skipped", "skipped"
        ]
    );
}

#[test]
fn a_percentage_counts_against_the_items() {
    let dir = tempfile::tempdir().unwrap();
    // 50% of 6 items is 3: the fourth failure exceeds it.
    let job = write(
        dir.path(),
        "job.toml",
        &format!("max_failures = \"50%\"\n{FAILING}"),
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc = read_json(&out);
    assert_eq!(
        statuses(&doc),
        ["failed", "failed", "failed", "failed", "skipped", "skipped"]
    );
}

#[test]
fn the_deadline_stops_running_items_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let marker = marker("deadline");
    let job = write(
        dir.path(),
        "job.toml",
        "deadline = \"1s\"\nkill_grace = \"100ms\"\nworkers = 2\n\
         [[task]]\nfunction = \"sleep\"\ninputs = [0.1, 30, 30, 30]\n\
         [[task]]\nname = \"later\"\nfunction = \"double\"\ninputs = [1]\n",
    );
    let out = dir.path().join("out.json");
    let started = Instant::now();
    let output = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .env("RUNJOBS_TEST_MARKER", &marker)
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let doc = read_json(&out);
    assert_eq!(statuses(&doc), ["ok", "failed", "failed", "skipped"]);
    let stopped = results(&doc, 0)[1]["error"].as_str().unwrap();
    assert!(stopped.contains("deadline (1s) passed"), "{stopped}");
    assert_eq!(
        doc["tasks"].as_array().unwrap().len(),
        1,
        "the later task never started"
    );
    assert!(
        stderr(&output).contains("(stopped: the deadline of 1s passed)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}
