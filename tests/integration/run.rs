//! The shipped jobs and the run command's flags and exit codes.

use std::collections::HashSet;
use std::process::Command;

use predicates::prelude::*;
use serde_json::json;

use crate::util::*;

#[test]
fn square_job_gives_the_pool_map_result_from_worker_processes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("square.json");
    let child = Command::new(BIN)
        .arg(repo().join("jobs/square.toml"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(child.status.success(), "{}", stderr(&child));
    let doc = read_json(&out);
    assert_eq!(outputs(&doc, 0), [json!(1), json!(4), json!(9), json!(16)]);
    assert_eq!(doc["status"], "ok");
    assert_eq!(
        doc["summary"],
        json!({"total": 4, "ok": 4, "failed": 0, "timed_out": 0, "skipped": 0})
    );
    let runjobs_pid = u64::from(std::process::id());
    for result in results(&doc, 0) {
        let worker = result["worker"].as_u64().expect("worker pid");
        assert_ne!(worker, runjobs_pid);
        assert_eq!(result["attempts"], 1);
    }
}

#[test]
fn print_numbers_job_prints_from_four_processes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("print.json");
    let output = runjobs()
        .arg(repo().join("jobs/print_numbers.toml"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stderr(&output);
    for n in 1..=4 {
        assert!(
            text.lines().any(|l| l == format!("Process {n}: {n}")),
            "missing line {n}:\n{text}"
        );
    }
    let doc = read_json(&out);
    let expected: Vec<_> = (1..=4)
        .map(|n| json!(format!("Process {n}: {n}")))
        .collect();
    assert_eq!(outputs(&doc, 0), expected);
    let workers: HashSet<u64> = results(&doc, 0)
        .iter()
        .map(|r| r["worker"].as_u64().unwrap())
        .collect();
    assert!(!workers.is_empty() && workers.len() <= 4, "{workers:?}");
}

#[test]
fn every_shipped_job_runs_ok() {
    for entry in std::fs::read_dir(repo().join("jobs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        let output = runjobs()
            .arg(&path)
            .arg("-o")
            .arg(&out)
            .arg("-q")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            stderr(&output)
        );
        let doc = read_json(&out);
        assert_eq!(doc["status"], "ok", "{}", path.display());
        assert!(
            doc["summary"]["total"].as_u64().unwrap() > 0,
            "{}",
            path.display()
        );
    }
}

#[test]
fn wrong_types_and_overflow_fail_only_their_items() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        r#"
[[task]]
function = "square"
workers = 2
inputs = ["abc", 3, 9223372036854775807, 2.5, [1], 4]
"#,
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc = read_json(&out);
    let results = results(&doc, 0);
    let statuses: Vec<_> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "ok", "failed", "ok", "failed", "ok"]);
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("expects a number"),
        "{}",
        results[0]
    );
    assert!(
        results[2]["error"].as_str().unwrap().contains("overflow"),
        "{}",
        results[2]
    );
    assert_eq!(results[1]["output"], 9);
    assert_eq!(results[3]["output"], 6.25);
    assert_eq!(results[5]["output"], 16);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["summary"]["failed"], 3);
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        r#"
workers = 3
[output]
path = "results/{job}.json"
[[task]]
function = "square"
inputs = { range = [0, 10] }
"#,
    );
    runjobs()
        .arg(&job)
        .arg("--dry-run")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "task `square`: builtin:square over 10 items; 3 workers",
        ));
    assert!(
        !dir.path().join("results").exists(),
        "a dry run must not write results"
    );
}

#[test]
fn quiet_prints_nothing_when_all_is_well_and_the_failures_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.toml",
        "[[task]]\nfunction = \"double\"\ninputs = [1, 2]\n",
    );
    runjobs()
        .arg(&good)
        .arg("-q")
        .assert()
        .code(0)
        .stderr("")
        .stdout("");
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[task]]\nfunction = \"double\"\ninputs = [1, \"x\"]\n",
    );
    runjobs().arg(&bad).arg("-q").assert().code(1).stderr(
        predicate::str::contains("failed: double[1]")
            .and(predicate::str::contains("expects a number")),
    );
}

#[test]
fn status_output_off_a_terminal_has_no_carriage_returns_or_colours() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"print_number\"\ninputs = [1, 2, 3]\n",
    );
    let output = runjobs().arg(&job).output().unwrap();
    assert!(output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("runjobs: job: 3 ok, 0 failed, 0 timed out"),
        "{text}"
    );
    assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
}

#[test]
fn workers_flag_overrides_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 8\n[[task]]\nfunction = \"sleep\"\ninputs = [0.05, 0.05, 0.05, 0.05, 0.05, 0.05]\n",
    );
    let out = dir.path().join("out.json");
    runjobs()
        .arg(&job)
        .args(["-j", "2", "-o"])
        .arg(&out)
        .assert()
        .code(0);
    let doc = read_json(&out);
    assert_eq!(doc["tasks"][0]["workers"], 2);
    let pids: HashSet<u64> = results(&doc, 0)
        .iter()
        .map(|r| r["worker"].as_u64().unwrap())
        .collect();
    assert!(pids.len() <= 2, "{pids:?}");
}

#[test]
fn functions_lists_every_builtin() {
    let output = runjobs().arg("functions").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for name in [
        "square",
        "print_number",
        "sha256_file",
        "collatz_steps",
        "format",
        "len",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
}

#[test]
fn bad_command_line_exits_2() {
    runjobs()
        .args(["jobs/square.toml", "--workers", "0"])
        .assert()
        .code(2);
    runjobs()
        .args(["jobs/square.toml", "--timeout", "soon"])
        .assert()
        .code(2);
    runjobs().args(["--no-such-flag"]).assert().code(2);
}

#[test]
fn output_path_template_is_filled_in_and_relative_to_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "jobs/nightly.toml",
        "[output]\npath = \"../out/{job}-{date}.json\"\n[[task]]\nfunction = \"negate\"\ninputs = [1]\n",
    );
    // Run from elsewhere: the path must not depend on the current directory.
    runjobs()
        .arg(&job)
        .current_dir(std::env::temp_dir())
        .assert()
        .code(0);
    // The results file, beside the overlap lock's dotfile, the run index and the link to
    // the latest results.
    let out = dir.path().join("out");
    assert!(out.join("nightly.history.jsonl").is_file());
    assert!(out.join("nightly-latest.json").is_symlink());
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| {
            let name = name.to_string_lossy();
            !name.starts_with('.') && !name.contains("history") && !name.contains("latest")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].to_string_lossy().into_owned();
    assert!(
        name.starts_with("nightly-20") && name.ends_with(".json"),
        "{name}"
    );
}

#[test]
fn timeout_flag_overrides_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "timeout = \"1h\"\nkill_grace = \"100ms\"\n[[task]]\nfunction = \"sleep\"\ninputs = [30, 0]\n",
    );
    let out = dir.path().join("out.json");
    runjobs()
        .arg(&job)
        .args(["--timeout", "200ms", "-o"])
        .arg(&out)
        .assert()
        .code(1);
    let doc = read_json(&out);
    assert_eq!(results(&doc, 0)[0]["status"], "timed_out");
    assert!(
        results(&doc, 0)[0]["error"]
            .as_str()
            .unwrap()
            .contains("200ms")
    );
    assert_eq!(results(&doc, 0)[1]["status"], "ok");
}

/// Off a terminal, a run longer than 10 s prints a plain status line (counts, rate, ETA) every
/// 10 s: cron mail gets progress without `\r` or colour codes.
#[test]
fn long_runs_print_plain_status_lines_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\n[[task]]\nfunction = \"sleep\"\ninputs = [0.1, 11.5, 0.1]\n",
    );
    let output = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(dir.path().join("out.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stderr(&output);
    let status = text
        .lines()
        .find(|l| l.starts_with("runjobs: sleep: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        status.contains("2/3 done (2 ok, 0 failed, 0 timed out)") && status.contains("/s, ETA"),
        "{status}"
    );
    assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
}

#[test]
fn items_that_run_long_are_named_off_a_terminal_and_quick_runs_say_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\n[functions.nap]\ncommand = [\"sleep\", \"{input}\"]\n\
         [[task]]\nfunction = \"sleep\"\ninputs = [0.01, 6, 0.01]\n\
         [[task]]\nfunction = \"nap\"\ninputs = [5.5]\n",
    );
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let said = stderr(&output);
    // A builtin worker's item and a command's.
    assert!(
        said.contains("runjobs: SLOW sleep[1] (input 6) running for 5s"),
        "{said}"
    );
    assert!(
        said.contains("runjobs: SLOW nap[0] (input 5.5) running for 5s"),
        "{said}"
    );
    assert_eq!(said.matches("SLOW").count(), 2, "{said}");

    let quick = write(
        dir.path(),
        "quick.toml",
        "[[task]]\nfunction = \"sleep\"\ninputs = [0.01, 0.2]\n",
    );
    let output = runjobs().arg(&quick).arg("-o").arg(&out).output().unwrap();
    assert!(!stderr(&output).contains("SLOW"), "{}", stderr(&output));
    let output = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(!stderr(&output).contains("SLOW"), "-q: {}", stderr(&output));
}

#[test]
fn the_dry_run_shows_items_as_they_would_run_and_all_of_them_one_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.count]\ncommand = [\"wc\", \"-c\", \"{input}\"]\n\
         [[task]]\nfunction = \"count\"\ninputs = [\"a.txt\", \"b c.txt\", \"d.txt\", \"e.txt\"]\n\
         [[task]]\nfunction = \"square\"\ninputs = { range = [0, 250] }\n",
    );
    let output = runjobs().arg(&job).arg("--dry-run").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("    count #0 wc -c a.txt\n"), "{plan}");
    assert!(plan.contains("    count #1 wc -c 'b c.txt'\n"), "{plan}");
    assert!(!plan.contains("count #3"), "the first few only: {plan}");
    assert!(plan.contains("    square #0 builtin:square 0\n"), "{plan}");

    let output = runjobs().arg(&job).arg("--dry-run=all").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let all = String::from_utf8_lossy(&output.stdout);
    assert_eq!(all.lines().count(), 4 + 250, "one line an item");
    assert!(all.lines().last().unwrap() == "square #249 builtin:square 249");
    assert!(!dir.path().join("out").exists(), "nothing ran");
}
