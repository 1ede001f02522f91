//! Never losing work: the journal, `--resume` by identity, SIGTERM and SIGKILL mid-run, and
//! Ctrl-Z.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A command job whose function appends its input to `calls.txt` (in the job's folder) before
/// working: the file counts invocations.
fn counting_job(inputs: &str, seconds: f64) -> String {
    format!(
        "workers = 2\nkill_grace = \"500ms\"\n\
         [functions.square]\n\
         command = [\"sh\", \"-c\", \"echo \\\"$1\\\" >> calls.txt; sleep {seconds}; echo $(($1 * $1))\", \"sh\", \"{{input}}\"]\n\
         [[task]]\nname = \"sq\"\nfunction = \"square\"\ninputs = {inputs}\n"
    )
}

/// The inputs the function was called with, in call order.
fn calls(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("calls.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn wait_for_calls(dir: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls(dir).len() < count {
        assert!(
            Instant::now() < deadline,
            "the job never made {count} calls"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn resume(job: &Path, out: &Path) -> std::process::Output {
    runjobs()
        .arg(job)
        .arg("-o")
        .arg(out)
        .arg("--resume")
        .arg(out)
        .output()
        .unwrap()
}

fn statuses(doc: &Value) -> Vec<String> {
    results(doc, 0)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

fn inputs_where(doc: &Value, keep: impl Fn(&Value) -> bool) -> Vec<i64> {
    results(doc, 0)
        .iter()
        .filter(|r| keep(r))
        .map(|r| r["input"].as_i64().unwrap())
        .collect()
}

/// Starts a run of 12 items of 0.3 s on 2 workers, marked `name`, and returns once 5 have
/// started: (folder, job, output, marker, runjobs).
fn twelve_slow_items_running(
    name: &str,
) -> (
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    String,
    std::process::Child,
) {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &counting_job("{ range = [0, 12] }", 0.3),
    );
    let out = dir.path().join("out.json");
    let marker = marker(name);
    let child = spawn_marked(&job, Some(&out), &marker);
    wait_for_calls(dir.path(), 5);
    (dir, job, out, marker, child)
}

#[test]
fn sigterm_mid_run_writes_partial_results_and_resume_finishes_the_rest() {
    let (dir, job, out, marker, mut child) = twelve_slow_items_running("sigterm-resume");
    let sent = Instant::now();
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    // kill_grace is 500 ms.
    assert!(
        sent.elapsed() < Duration::from_millis(1500),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(1)),
        Vec::<u32>::new()
    );

    let first = read_json(&out);
    assert_eq!(first["status"], "interrupted");
    let done = inputs_where(&first, |r| r["status"] == "ok");
    assert!(!done.is_empty(), "{first}");
    assert!(done.len() < 12);
    // The output was written, so the journal has served its purpose.
    assert!(!dir.path().join("out.json.journal").exists());

    let before = calls(dir.path()).len();
    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let last = read_json(&out);
    assert_eq!(statuses(&last), vec!["ok"; 12]);
    assert_eq!(
        outputs(&last, 0),
        (0..12)
            .map(|i| Value::from((i * i).to_string()))
            .collect::<Vec<_>>()
    );
    // Exactly the unfinished items ran again; the finished ones were reused.
    let mut rerun = calls(dir.path())[before..].to_vec();
    rerun.sort_unstable();
    let unfinished = inputs_where(&first, |r| r["status"] != "ok");
    assert_eq!(rerun, unfinished);
    assert_eq!(inputs_where(&last, |r| r["reused_from"].is_string()), done);
    // Reused results name the file they came from and when their run started.
    let reused = &results(&last, 0)[done[0] as usize];
    assert!(
        reused["reused_from"]
            .as_str()
            .is_some_and(|f| f.ends_with(".json") || f.ends_with(".journal")),
        "{reused}"
    );
    assert_eq!(reused["computed_at"], first["started_at"]);
}

#[test]
fn sighup_mid_run_stops_like_sigterm_and_resume_finishes_the_rest() {
    let (dir, job, out, marker, mut child) = twelve_slow_items_running("sighup-resume");
    signal(child.id(), "HUP");
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "a closed terminal is an interruption"
    );
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(1)),
        Vec::<u32>::new()
    );
    let first = read_json(&out);
    assert_eq!(first["status"], "interrupted");
    let done = inputs_where(&first, |r| r["status"] == "ok");
    assert!(!done.is_empty() && done.len() < 12, "{first}");
    let not_run = inputs_where(&first, |r| r["status"] == "skipped");
    assert!(!not_run.is_empty(), "{first}");
    assert!(!dir.path().join("out.json.journal").exists());

    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let last = read_json(&out);
    assert_eq!(statuses(&last), vec!["ok"; 12]);
    assert_eq!(inputs_where(&last, |r| r["reused_from"].is_string()), done);
}

#[test]
fn under_nohup_a_sighup_is_ignored_and_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &counting_job("{ range = [0, 6] }", 0.3),
    );
    let out = dir.path().join("out.json");
    let marker = marker("nohup");
    let mut child = Command::new("nohup")
        .arg(BIN)
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .env("RUNJOBS_TEST_MARKER", &marker)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_calls(dir.path(), 2);
    signal(child.id(), "HUP");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let doc = read_json(&out);
    assert_eq!(doc["status"], "ok");
    assert_eq!(statuses(&doc), vec!["ok"; 6]);
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(1)),
        Vec::<u32>::new()
    );
}

#[test]
fn sigkill_mid_run_leaves_no_torn_output_no_processes_and_a_journal_to_resume_from() {
    let (dir, job, out, marker, mut child) = twelve_slow_items_running("sigkill-resume");
    signal(child.id(), "KILL");
    child.wait().unwrap();
    // The guard process stops the per-item commands that were running.
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(1)),
        Vec::<u32>::new()
    );
    assert!(!out.exists(), "a killed run never writes a partial output");

    let journal = std::fs::read_to_string(dir.path().join("out.json.journal")).unwrap();
    let journaled: Vec<i64> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["status"] == "ok")
        .map(|r| r["input"].as_i64().unwrap())
        .collect();
    assert!(!journaled.is_empty(), "{journal}");

    let before = calls(dir.path()).len();
    // Named by the journal itself, the file a user finds after the crash.
    let output = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .arg("--resume")
        .arg(dir.path().join("out.json.journal"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("out.json.journal"),
        "{}",
        stderr(&output)
    );
    let last = read_json(&out);
    assert_eq!(statuses(&last), vec!["ok"; 12]);
    let rerun = &calls(dir.path())[before..];
    assert_eq!(rerun.len(), 12 - journaled.len());
    assert!(
        rerun.iter().all(|input| !journaled.contains(input)),
        "a journaled item ran again: {rerun:?} vs {journaled:?}"
    );
    // Stale temporary files of the killed run are cleaned up.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.ends_with(".journal"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

#[test]
fn a_journal_of_a_killed_run_outlives_a_later_run_that_did_not_finish() {
    let (dir, job, out, _marker, mut child) = twelve_slow_items_running("journal-kept");
    signal(child.id(), "KILL");
    child.wait().unwrap();
    let journal = dir.path().join("out.json.journal");
    let killed = std::fs::read_to_string(&journal).unwrap();
    // A later run, without --resume, that ends with a failure.
    write(dir.path(), "job.toml", &counting_job("[\"1 1\"]", 0.0));
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("holds results of a run that never finished"),
        "{err}"
    );
    assert!(err.contains("is kept"), "{err}");
    let now = std::fs::read_to_string(&journal).unwrap();
    assert!(
        now.starts_with(&killed),
        "the killed run's lines are still there"
    );
    // A run that finishes every item ok supersedes it.
    write(dir.path(), "job.toml", &counting_job("[1]", 0.0));
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    assert!(!journal.exists());
}

#[test]
fn inputs_inserted_and_appended_between_runs_are_the_only_ones_run() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", &counting_job("[2, 3, 4]", 0.0));
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    assert_eq!(calls(dir.path()).len(), 3);

    write(
        dir.path(),
        "job.toml",
        &counting_job("[1, 2, 3, 4, 5]", 0.0),
    );
    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut new = calls(dir.path())[3..].to_vec();
    new.sort_unstable();
    assert_eq!(new, [1, 5]);
    let doc = read_json(&out);
    assert_eq!(
        outputs(&doc, 0),
        ["1", "4", "9", "16", "25"].map(Value::from).to_vec()
    );
    assert_eq!(
        inputs_where(&doc, |r| r["reused_from"].is_string()),
        [2, 3, 4]
    );
    assert_eq!(results(&doc, 0)[0]["index"], 0);
}

#[test]
fn changing_the_function_reruns_everything() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", &counting_job("[1, 2, 3]", 0.0));
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    write(
        dir.path(),
        "job.toml",
        &counting_job("[1, 2, 3]", 0.0).replace("$(($1 * $1))", "$(($1 * $1 * $1))"),
    );
    resume(&job, &out);
    assert_eq!(calls(dir.path()).len(), 6);
    assert_eq!(
        outputs(&read_json(&out), 0),
        ["1", "8", "27"].map(Value::from).to_vec()
    );
}

#[test]
fn a_pipeline_feeds_its_later_task_from_reused_results() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = |step: u32| {
        format!(
            "[functions.sq]\n\
             command = [\"sh\", \"-c\", \"echo \\\"$1\\\" >> calls.txt; echo $(($1 * $1))\", \"sh\", \"{{input}}\"]\n\
             stdout = \"json\"\n\
             [functions.plus]\n\
             command = [\"sh\", \"-c\", \"echo $(($1 + {step}))\", \"sh\", \"{{input}}\"]\n\
             stdout = \"json\"\n\
             [[task]]\nname = \"square\"\nfunction = \"sq\"\ninputs = [1, 2, 3]\n\
             [[task]]\nname = \"next\"\nfunction = \"plus\"\ninputs = {{ from = \"square\" }}\n"
        )
    };
    let job = write(dir.path(), "job.toml", &pipeline(1));
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    assert_eq!(
        outputs(&read_json(&out), 1),
        [2, 5, 10].map(Value::from).to_vec()
    );
    // The second step changes; the first is reused and still feeds it.
    write(dir.path(), "job.toml", &pipeline(100));
    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(calls(dir.path()).len(), 3, "the first task ran once only");
    let doc = read_json(&out);
    assert!(
        results(&doc, 0)
            .iter()
            .all(|r| r["reused_from"].is_string())
    );
    assert!(results(&doc, 1).iter().all(|r| r["reused_from"].is_null()));
    assert_eq!(outputs(&doc, 1), [101, 104, 109].map(Value::from).to_vec());
}

#[test]
fn failed_items_are_rerun_and_ok_ones_reused_from_toml_and_json_lines_results() {
    for ext in ["toml", "jsonl"] {
        let dir = tempfile::tempdir().unwrap();
        // Fails for 3 until the flag file exists.
        let body = "[functions.f]\n\
            command = [\"sh\", \"-c\", \"echo \\\"$1\\\" >> calls.txt; if [ $1 = 3 ] && [ ! -e fixed ]; then exit 1; fi; echo ok$1\", \"sh\", \"{input}\"]\n\
            [[task]]\nname = \"t\"\nfunction = \"f\"\ninputs = [1, 2, 3]\n";
        let job = write(dir.path(), "job.toml", body);
        let out = dir.path().join(format!("out.{ext}"));
        runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
        write(dir.path(), "fixed", "");
        let output = resume(&job, &out);
        assert_eq!(output.status.code(), Some(0), "{ext}: {}", stderr(&output));
        let mut first = calls(dir.path());
        let again = first.split_off(3);
        first.sort_unstable();
        assert_eq!((first, again), (vec![1, 2, 3], vec![3]), "{ext}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.matches("reused_from").count(), 2, "{ext}: {text}");
    }
}

#[test]
fn results_without_function_identities_are_not_matched() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", &counting_job("[1, 2]", 0.0));
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    // As an older runjobs wrote it.
    let mut doc = read_json(&out);
    doc["tasks"][0]
        .as_object_mut()
        .unwrap()
        .remove("function_hash");
    std::fs::write(&out, doc.to_string()).unwrap();
    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("2 results in") && stderr(&output).contains("run again"),
        "{}",
        stderr(&output)
    );
    assert_eq!(calls(dir.path()).len(), 4);
}

#[test]
fn resuming_from_nothing_runs_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", &counting_job("[1, 2]", 0.0));
    let out = dir.path().join("out.json");
    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("nothing to resume"),
        "{}",
        stderr(&output)
    );
    assert_eq!(calls(dir.path()).len(), 2);
}

#[test]
fn dry_run_with_resume_counts_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", &counting_job("[1, 2]", 0.0));
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    let plan = || {
        let output = runjobs()
            .arg(&job)
            .arg("--dry-run")
            .arg("--resume")
            .arg(&out)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    write(dir.path(), "job.toml", &counting_job("[1, 2, 3]", 0.0));
    let shown = plan();
    assert!(shown.contains("1 of 3 items left (2 done)"), "{shown}");
    assert_eq!(calls(dir.path()).len(), 2);

    // A function changed: nothing is done.
    write(dir.path(), "job.toml", &counting_job("[1, 2, 3]", 0.01));
    let shown = plan();
    assert!(shown.contains("over 3 items, none done yet"), "{shown}");
}

/// State letters (`ps` STAT) of the processes carrying `marker` whose command line holds
/// `needle`.
fn states(marker: &str, needle: &str) -> Vec<char> {
    processes_with_marker(marker)
        .into_iter()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if !String::from_utf8_lossy(&cmdline).contains(needle) {
                return None;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            stat.rsplit(')').next()?.trim_start().chars().next()
        })
        .collect()
}

#[test]
fn ctrl_z_pauses_every_process_and_timeouts_do_not_count_the_pause() {
    // Commands (a process per item) and builtin workers (long-lived): each item takes
    // 0.5 s of its 2 s timeout, and the run is paused for 2.5 s in the middle: counted, the
    // pause would time the running items out.
    let cases = [
        (
            "commands",
            "[functions.s]\ncommand = [\"sh\", \"-c\", \"sleep 0.5; echo $1\", \"sh\", \"{input}\"]\n",
            "s",
            "sleep",
        ),
        ("builtins", "", "sleep", "__worker"),
    ];
    for (name, functions, function, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let job = write(
            dir.path(),
            "job.toml",
            &format!(
                "workers = 2\ntimeout = \"2s\"\n{functions}[[task]]\nfunction = \"{function}\"\ninputs = [0.5, 0.5, 0.5, 0.5]\n"
            ),
        );
        let out = dir.path().join("out.json");
        let marker = marker(&format!("pause-{name}"));
        let log = dir.path().join("stderr.txt");
        let mut child = Command::new(BIN)
            .arg(&job)
            .arg("-o")
            .arg(&out)
            .env("RUNJOBS_TEST_MARKER", &marker)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while states(&marker, needle).len() < 2 {
            assert!(Instant::now() < deadline, "{name}: the items never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        signal(child.id(), "TSTP");
        std::thread::sleep(Duration::from_millis(300));
        let paused = states(&marker, needle);
        assert!(
            paused.len() >= 2 && paused.iter().all(|s| *s == 'T'),
            "{name}: {paused:?}"
        );
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
                .unwrap()
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .chars()
                .next(),
            Some('T'),
            "{name}: runjobs itself is stopped"
        );
        std::thread::sleep(Duration::from_millis(2200));
        signal(child.id(), "CONT");
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(&log).unwrap();
        let doc = read_json(&out);
        assert_eq!(statuses(&doc), vec!["ok"; 4], "{name}: {doc}\n{log}");
        assert_eq!(status.code(), Some(0), "{name}: {log}");
    }
}

/// SIGKILLs the run `child` (started marked with `marker`) once `journaled` holds (within 20
/// s), and checks that none of its processes outlives it.
fn kill_once(child: &mut std::process::Child, marker: &str, journaled: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !journaled() {
        assert!(Instant::now() < deadline, "nothing was journaled");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(child.id(), "KILL");
    child.wait().unwrap();
    assert_eq!(
        wait_until_gone(marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

/// Builtin workers append their own records to the journal (lines ending in `,`): after a
/// SIGKILL they are there, and `--resume` reuses them rather than running them again.
#[test]
fn records_builtin_workers_journaled_survive_a_sigkill_and_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    // 24 distinct inputs of about 0.15 s each on 2 workers: about 2 s in all.
    let inputs: Vec<String> = (0..24)
        .map(|i| format!("{:.3}", 0.15 + i as f64 / 1000.0))
        .collect();
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "workers = 2\n[[task]]\nname = \"nap\"\nfunction = \"sleep\"\ninputs = [{}]\n",
            inputs.join(", ")
        ),
    );
    let out = dir.path().join("out.json");
    let journal = dir.path().join("out.json.journal");
    let marker = marker("builtin-journal");
    let mut child = spawn_marked(&job, Some(&out), &marker);
    let worker_lines = || -> Vec<Value> {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_suffix(','))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    kill_once(&mut child, &marker, || worker_lines().len() >= 4);
    let journaled = worker_lines();
    assert!(journaled.len() < 24, "the run was killed before the end");
    for record in &journaled {
        assert_eq!(record["status"], "ok");
        assert_ne!(
            record["worker"],
            child.id(),
            "a worker wrote it, not runjobs"
        );
    }

    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&out);
    let results = results(&doc, 0);
    assert_eq!(statuses(&doc), vec!["ok"; 24]);
    let reused: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("reused_from").is_some())
        .collect();
    assert_eq!(reused.len(), journaled.len());
    for record in &journaled {
        let index = record["index"].as_u64().unwrap() as usize;
        let result = &results[index];
        assert!(result.get("reused_from").is_some(), "{result}");
        assert_eq!(result["worker"], record["worker"], "reused, not run again");
        assert_eq!(result["output"], record["output"]);
    }
    assert!(!journal.exists());
}

/// A Python worker's `ok` batches are journaled by runjobs as they land (a `range`'s as
/// compact `ok_run` lines): after a SIGKILL they are there, and `--resume` reuses every
/// journaled result, whatever the form of its line.
#[test]
fn records_of_python_batches_journaled_survive_a_sigkill_and_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    // ~1 ms an item: batches of a few items, about 1.5 s for 3000 items on 2 workers.
    write(
        dir.path(),
        "fns.py",
        "import time\ndef f(x):\n    time.sleep(0.001)\n    return {'x': x, 'sq': x * x}\n",
    );
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\n[functions.f]\npython = \"fns.py:f\"\n\
         [[task]]\nfunction = \"f\"\ninputs = { range = [0, 3000] }\n",
    );
    let out = dir.path().join("out.json");
    let journal = dir.path().join("out.json.journal");
    let marker = marker("python-journal");
    let mut child = spawn_marked(&job, Some(&out), &marker);
    // The batches of a `range` are journaled as compact `ok_run` lines: what their items
    // share once, their outputs as the worker wrote them.
    let journaled = || -> (Vec<Value>, usize) {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.strip_suffix(',').unwrap_or(l)).ok())
            .collect();
        let mut records = Vec::new();
        let mut batch_lines = 0;
        for line in &lines {
            if let Some(run) = line.get("ok_run") {
                batch_lines += 1;
                let outputs = line["outputs"].as_array().unwrap();
                assert_eq!(run["count"].as_u64(), Some(outputs.len() as u64), "{line}");
                for (k, output) in outputs.iter().enumerate() {
                    let k = k as i64;
                    records.push(serde_json::json!({
                        "index": run["first"].as_i64().unwrap() + k,
                        "input": run["start"].as_i64().unwrap() + k * run["step"].as_i64().unwrap(),
                        "status": "ok",
                        "output": output,
                        "worker": run["worker"],
                    }));
                }
            } else if line.get("index").is_some() {
                records.push(line.clone());
            }
        }
        (records, batch_lines)
    };
    kill_once(&mut child, &marker, || journaled().1 >= 50);
    let (records, _) = journaled();
    assert!(records.len() < 3000, "the run was killed before the end");
    for record in &records {
        assert_eq!(record["status"], "ok", "{record}");
        let x = record["input"].as_i64().unwrap();
        assert_eq!(record["index"], x);
        assert_eq!(record["output"], serde_json::json!({"x": x, "sq": x * x}));
    }

    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&out);
    let results = results(&doc, 0);
    assert_eq!(statuses(&doc), vec!["ok"; 3000]);
    for record in &records {
        let result = &results[record["index"].as_u64().unwrap() as usize];
        assert!(result.get("reused_from").is_some(), "{result}");
        assert_eq!(result["worker"], record["worker"], "reused, not run again");
        assert_eq!(result["output"], record["output"]);
    }
    let reused = results.iter().filter(|r| r.get("reused_from").is_some());
    let indices: std::collections::BTreeSet<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(reused.count(), indices.len());
    assert!(!journal.exists());
}

/// A command job whose items take `seconds` and then append their index to `done.txt`: the
/// file counts the items that ran to the end.
fn completion_counting_job(inputs: &str, seconds: f64) -> String {
    format!(
        "workers = 2\nkill_grace = \"300ms\"\n\
         [functions.slow]\n\
         command = [\"sh\", \"-c\", \"sleep {seconds}; echo $RUNJOBS_INDEX >> done.txt; echo $1\", \"sh\", \"{{input}}\"]\n\
         [[task]]\nfunction = \"slow\"\ninputs = {inputs}\n"
    )
}

fn completed(dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(dir.join("done.txt")).unwrap_or_default();
    let mut done: Vec<u64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    done.sort_unstable();
    done
}

#[test]
fn repeated_inputs_stay_distinct_items_across_a_stop_and_resume() {
    for signal_name in ["TERM", "KILL"] {
        let dir = tempfile::tempdir().unwrap();
        let job = write(
            dir.path(),
            "job.toml",
            &completion_counting_job("[7, 7, 7, 7, 7, 7]", 0.6),
        );
        let out = dir.path().join("out.json");
        let mut child = spawn_marked(&job, Some(&out), &marker("repeats"));
        let deadline = Instant::now() + Duration::from_secs(20);
        // Two results journaled, not just two commands done: a command's work can end
        // a moment before runjobs records it, and the count below needs two recorded.
        let journaled_ok = || {
            std::fs::read_to_string(dir.path().join("out.json.journal"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l.trim_end_matches(',')).ok())
                .filter(|r| r["status"] == "ok")
                .count()
        };
        while journaled_ok() < 2 {
            assert!(Instant::now() < deadline, "two items never finished");
            std::thread::sleep(Duration::from_millis(10));
        }
        signal(child.id(), signal_name);
        child.wait().unwrap();
        // An item may have finished its work but not been recorded when the signal came:
        // it runs again (at least once, never lost). So count what runjobs recorded.
        let ran_before = completed(dir.path()).len();
        assert!(ran_before < 6, "the run was stopped before the end");

        let output = resume(&job, &out);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let said = stderr(&output);
        let recorded: usize = said
            .split(" finished result")
            .next()
            .and_then(|before| before.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count of finished results in: {said}"));
        assert!(recorded >= 2 && recorded <= ran_before, "{said}");
        let doc = read_json(&out);
        let reused = results(&doc, 0)
            .iter()
            .filter(|r| r.get("reused_from").is_some())
            .count();
        // Each recorded result stands in for one item only; the others ran now.
        assert_eq!(reused, recorded, "-{signal_name}: {doc}");
        let ran_now = completed(dir.path()).len() - ran_before;
        assert_eq!(ran_now, 6 - recorded, "-{signal_name}");
        let mut indices = completed(dir.path());
        indices.dedup();
        assert_eq!(indices, [0, 1, 2, 3, 4, 5], "-{signal_name}");
        assert!(outputs(&doc, 0).iter().all(|o| o == "7"));

        // Resuming a finished run (its results file and the journal it kept, if any, are
        // views of one history) runs nothing again.
        let before = completed(dir.path()).len();
        let output = resume(&job, &out);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(completed(dir.path()).len(), before, "-{signal_name}");
    }
}

#[test]
fn edited_inputs_with_repeats_run_only_the_occurrences_never_finished() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &completion_counting_job("[7, 7, 3]", 0.0),
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    assert_eq!(completed(dir.path()).len(), 3);
    // 3 moves, 5 is new, and a third 7 joins the two that finished.
    write(
        dir.path(),
        "job.toml",
        &completion_counting_job("[3, 7, 5, 7, 7]", 0.0),
    );
    std::fs::remove_file(dir.path().join("done.txt")).unwrap();
    let output = resume(&job, &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Only the new 5 and the third 7 ran (indices 2 and 4 of the new inputs).
    assert_eq!(completed(dir.path()), [2, 4]);
    let doc = read_json(&out);
    let reused: Vec<bool> = results(&doc, 0)
        .iter()
        .map(|r| r.get("reused_from").is_some())
        .collect();
    assert_eq!(reused, [true, true, false, true, false]);
}

#[test]
fn resume_without_output_completes_the_file_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.f]\ncommand = [\"sh\", \"-c\", \"if [ -e fail.flag ] && [ $1 = 2 ]; then exit 1; fi; echo $1\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = [1, 2, 3]\n",
    );
    write(dir.path(), "fail.flag", "");
    let elsewhere = dir.path().join("elsewhere/o.json");
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&elsewhere)
        .assert()
        .code(1);
    std::fs::remove_file(dir.path().join("fail.flag")).unwrap();
    let output = runjobs()
        .arg(&job)
        .arg("--resume")
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("elsewhere/o.json"),
        "{}",
        stderr(&output)
    );
    let doc = read_json(&elsewhere);
    assert_eq!(doc["status"], "ok");
    assert_eq!(outputs(&doc, 0), ["1", "2", "3"]);
    assert!(
        !dir.path().join("out").exists(),
        "the job's own output path is untouched"
    );

    // Named by a journal, the results file beside it is the one completed.
    let journal = dir.path().join("x.json.journal");
    std::fs::write(&journal, "").unwrap();
    let output = runjobs()
        .arg(&job)
        .arg("--resume")
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        outputs(&read_json(&dir.path().join("x.json")), 0),
        ["1", "2", "3"]
    );
}
