//! `runjobs status`: a running job seen from a second process (and as another user), its
//! last run once it ended, a run killed with SIGKILL, jobs never run, a folder of job files,
//! the JSON keys; `report` of a running job's results and of a killed run's journal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{BIN, marker, runjobs, spawn_marked, stderr, wait_until_gone, write};

/// A job of six naps on two workers, writing timestamped results under `out/`; the fifth nap
/// (index 4) lasts `long` seconds, the others 0.2 s.
fn naps(dir: &Path, name: &str, long: &str) -> PathBuf {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "workers = 2\n[output]\npath = \"out/{{job}}-{{timestamp}}.json\"\n\
             [[task]]\nname = \"nap\"\nfunction = \"sleep\"\n\
             inputs = [0.2, 0.2, 0.2, 0.2, {long}, 0.2]\n\
             [[task]]\nname = \"then\"\nfunction = \"square\"\ninputs = [1, 2]\n"
        ),
    )
}

fn status_json(args: &[&Path]) -> Value {
    let output = runjobs()
        .arg("status")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn status_text(args: &[&Path]) -> (Option<i32>, String) {
    let output = runjobs().arg("status").args(args).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(&output);
    (output.status.code(), text)
}

/// Polls `status --json JOB` (up to 20 s) until `ready` holds for the job; returns it.
fn wait_for_status(job: &Path, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let doc = status_json(&[job]);
        let one = doc["jobs"][0].clone();
        if ready(&one) {
            return one;
        }
        assert!(Instant::now() < deadline, "status never got there: {one:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The running run has four naps done.
fn four_done(one: &Value) -> bool {
    one["run"]["tasks"][0]["done"].as_u64().unwrap_or(0) >= 4
}

/// The running run shows an item among the longest-running ones.
fn has_long_item(one: &Value) -> bool {
    one["run"]["longest_running"]
        .as_array()
        .is_some_and(|items| !items.is_empty())
}

/// Every process of the run is gone (within 2 s).
fn nothing_left(marker: &str) {
    let alive = wait_until_gone(marker, Duration::from_secs(2));
    assert_eq!(alive, Vec::<u32>::new(), "processes left running");
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_running_job_shows_its_pid_total_eta_and_longest_item_then_its_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let job = naps(dir.path(), "naps", "9");
    let marker = marker("status-running");
    let mut child = spawn_marked(&job, None, &marker);
    let one = wait_for_status(&job, four_done);
    assert_eq!(one["state"], "running", "{one:#}");
    let run = &one["run"];
    assert_eq!(run["pid"], child.id(), "{one:#}");
    assert_eq!(run["source"], "live", "{one:#}");
    let task = &run["tasks"][0];
    assert_eq!(
        task["total"], 6,
        "the total is known from the start: {one:#}"
    );
    assert_eq!(task["state"], "running");
    assert!(task["rate_per_s"].as_f64().unwrap() > 0.0, "{one:#}");
    assert!(run["eta_s"].as_f64().is_some(), "{one:#}");
    assert_eq!(run["tasks"][1]["state"], "pending", "{one:#}");

    // The long nap turns up among the longest-running items once it has run 5 s.
    let one = wait_for_status(&job, has_long_item);
    let item = &one["run"]["longest_running"][0];
    assert_eq!(item["task"], "nap", "{one:#}");
    assert_eq!(item["index"], 4, "{one:#}");
    assert!(item["running_s"].as_f64().unwrap() >= 5.0, "{one:#}");
    let (code, text) = status_text(&[&job]);
    assert_eq!(code, Some(0), "{text}");
    for part in [
        format!("running, pid {}", child.id()),
        "nap: ".to_owned(),
        "/6 done".to_owned(),
        "ETA".to_owned(),
        "longest running: nap[4] (input 9)".to_owned(),
        "then: pending".to_owned(),
    ] {
        assert!(text.contains(&part), "`{part}` missing from:\n{text}");
    }

    // `report` of the results file it is writing says it runs, and where to look.
    let results = PathBuf::from(one["run"]["results"].as_str().unwrap());
    let output = runjobs().arg("report").arg(&results).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(said.contains("job `naps` is running"), "{said}");
    assert!(said.contains("runjobs status"), "{said}");
    // So does `status` of that results file.
    let by_file = status_json(&[&results]);
    assert_eq!(by_file["jobs"][0]["state"], "running", "{by_file:#}");
    assert_eq!(by_file["jobs"][0]["run"]["pid"], child.id());

    assert!(child.wait().unwrap().success());
    let one = status_json(&[&job])["jobs"][0].clone();
    assert_eq!(one["state"], "not_running", "{one:#}");
    assert!(one["run"].is_null());
    let last = &one["last_run"];
    assert_eq!(last["status"], "ok", "{one:#}");
    assert_eq!(last["summary"]["ok"], 8);
    assert_eq!(last["results"], results.display().to_string());
    assert_eq!(one["unfinished"], Value::Array(Vec::new()));
    assert!(
        !dir.path().join("out/.naps.runjobs.live").exists(),
        "the live state goes with the run"
    );
    let (_, text) = status_text(&[&job]);
    assert!(text.contains("not running; last run"), "{text}");
    assert!(text.contains(": ok, 8 ok"), "{text}");
    nothing_left(&marker);
}

/// Runs `runjobs status --json JOB` as the user `nobody`, when this test runs as root.
fn status_as_nobody(job: &Path) -> Option<std::process::Output> {
    if !rustix::process::getuid().is_root() {
        eprintln!("skipped the other-user check: it needs root to run `setpriv` as nobody");
        return None;
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["status", "--json"])
        .arg(job)
        .output();
    match output {
        Ok(output) => Some(output),
        Err(e) => {
            eprintln!("skipped the other-user check: cannot run setpriv: {e}");
            None
        }
    }
}

#[test]
fn another_user_who_can_read_the_folder_sees_the_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let job = naps(dir.path(), "shared", "8");
    let marker = marker("status-other-user");
    let mut child = spawn_marked(&job, None, &marker);
    wait_for_status(&job, |one| one["run"]["source"] == "live");
    if let Some(output) = status_as_nobody(&job) {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
        let one = &doc["jobs"][0];
        assert_eq!(one["state"], "running", "{doc:#}");
        assert_eq!(one["run"]["pid"], child.id(), "{doc:#}");
        assert_eq!(one["run"]["tasks"][0]["total"], 6, "{doc:#}");
    }
    // Looking did not disturb the run.
    assert!(child.wait().unwrap().success());
    assert_eq!(status_json(&[&job])["jobs"][0]["last_run"]["status"], "ok");
    nothing_left(&marker);
}

#[test]
fn a_run_killed_with_sigkill_is_not_running_and_its_journal_is_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let job = naps(dir.path(), "killed", "8");
    let marker = marker("status-sigkill");
    let mut child = spawn_marked(&job, None, &marker);
    let one = wait_for_status(&job, four_done);
    let journal = one["run"]["journal"].as_str().unwrap().to_owned();
    let pid = child.id();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
    nothing_left(&marker);

    let one = status_json(&[&job])["jobs"][0].clone();
    assert_eq!(one["state"], "not_running", "{one:#}");
    assert!(one["run"].is_null(), "{one:#}");
    let unfinished = &one["unfinished"][0];
    assert_eq!(unfinished["journal"], journal.as_str(), "{one:#}");
    assert_eq!(unfinished["pid"], pid, "{one:#}");
    assert!(
        unfinished["summary"]["ok"].as_u64().unwrap() >= 4,
        "{one:#}"
    );
    let resume = unfinished["resume"].as_str().unwrap().to_owned();
    assert!(resume.contains("--resume"), "{resume}");
    let (code, text) = status_text(&[&job]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("not running"), "{text}");
    assert!(text.contains("unfinished"), "{text}");
    assert!(text.contains(&resume), "{text}");

    // The folder of results tells the same, the job file read from the journal.
    let by_folder = status_json(&[&dir.path().join("out")])["jobs"][0].clone();
    assert_eq!(
        by_folder["job_file"],
        job.display().to_string(),
        "{by_folder:#}"
    );
    assert_eq!(by_folder["unfinished"][0]["resume"], resume.as_str());

    // Its journal's report names the job.
    let output = runjobs().arg("report").arg(&journal).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("job `killed`: unfinished"), "{report}");

    // The command status gives continues the run; then nothing is left unfinished.
    let words: Vec<&str> = resume.split(' ').collect();
    assert_eq!(words[0], "runjobs");
    let output = runjobs().args(&words[1..]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let one = status_json(&[&job])["jobs"][0].clone();
    assert_eq!(one["last_run"]["status"], "ok", "{one:#}");
    assert_eq!(one["unfinished"], Value::Array(Vec::new()), "{one:#}");
}

#[test]
fn a_folder_of_job_files_gives_each_job_and_the_json_keys_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    let ran = write(
        &jobs,
        "ran.toml",
        "[output]\npath = \"../out/{job}.json\"\n[[task]]\nfunction = \"square\"\ninputs = [1, 2, 3]\n",
    );
    // An input folder that is not there: the job cannot run, and its status still reads.
    write(
        &jobs,
        "never.toml",
        "[[task]]\nfunction = \"sha256_file\"\ninputs = { glob = \"missing/*.txt\" }\n",
    );
    write(&jobs, "notes.txt", "not a job\n");
    runjobs().arg(&ran).assert().code(0);

    let doc = status_json(&[&jobs]);
    assert_eq!(doc["version"], 1);
    let listed: Vec<&str> = doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["never", "ran"], "{doc:#}");
    let never = &doc["jobs"][0];
    assert_eq!(never["state"], "never_run", "{doc:#}");
    assert!(never["last_run"].is_null());
    let ran_status = &doc["jobs"][1];
    assert_eq!(ran_status["state"], "not_running");
    let job_keys = set(&[
        "job",
        "job_file",
        "state",
        "lock",
        "run",
        "last_run",
        "unfinished",
    ]);
    assert_eq!(keys(ran_status), job_keys);
    assert_eq!(
        keys(&ran_status["last_run"]),
        set(&[
            "started_at",
            "finished_at",
            "status",
            "duration_s",
            "summary",
            "results"
        ])
    );
    assert_eq!(ran_status["last_run"]["summary"]["ok"], 3);
    let (code, text) = status_text(&[&jobs]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("job `never`"), "{text}");
    assert!(text.contains("never run"), "{text}");
    assert!(text.contains("job `ran`"), "{text}");

    // The folder of results stands for the jobs that ran there.
    let by_results = status_json(&[&dir.path().join("out")]);
    assert_eq!(by_results["jobs"][0]["job"], "ran", "{by_results:#}");
    assert_eq!(by_results["jobs"][0]["last_run"]["status"], "ok");
}

#[test]
fn the_running_json_has_its_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let job = naps(dir.path(), "keys", "9");
    let marker = marker("status-keys");
    let mut child = spawn_marked(&job, None, &marker);
    let one = wait_for_status(&job, has_long_item);
    let run = &one["run"];
    assert_eq!(
        keys(run),
        set(&[
            "pid",
            "started_at",
            "elapsed_s",
            "source",
            "updated_at",
            "results",
            "journal",
            "summary",
            "tasks",
            "eta_s",
            "longest_running",
            "waiting",
        ])
    );
    assert_eq!(
        keys(&run["tasks"][0]),
        set(&[
            "name",
            "state",
            "total",
            "done",
            "ok",
            "failed",
            "timed_out",
            "skipped",
            "rate_per_s",
            "eta_s",
        ])
    );
    assert_eq!(
        keys(&run["longest_running"][0]),
        set(&["task", "index", "input", "started_at", "running_s"])
    );
    assert!(child.wait().unwrap().success());
    nothing_left(&marker);
}

#[test]
fn bad_arguments_exit_2_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let (code, text) = status_text(&[&missing]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("missing.json"), "{text}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, text) = status_text(&[&empty]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no job files"), "{text}");
    let bad = write(dir.path(), "bad.toml", "this is = not [toml\n");
    let (code, text) = status_text(&[&bad]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("bad.toml"), "{text}");
}

#[test]
fn without_its_live_state_a_run_is_counted_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let job = naps(dir.path(), "nolive", "8");
    // A folder where the live state's temporary file would go: the run cannot keep it.
    std::fs::create_dir_all(dir.path().join("out/.nolive.runjobs.live.tmp")).unwrap();
    let marker = marker("status-journal");
    let mut child = spawn_marked(&job, None, &marker);
    let one = wait_for_status(&job, four_done);
    let run = &one["run"];
    assert_eq!(one["state"], "running", "{one:#}");
    assert_eq!(run["source"], "journal", "{one:#}");
    assert_eq!(run["pid"], child.id(), "{one:#}");
    assert_eq!(
        run["tasks"][0]["total"], 6,
        "the journal knows the total: {one:#}"
    );
    assert_eq!(run["tasks"][1]["state"], "pending", "{one:#}");
    assert_eq!(one["unfinished"], Value::Array(Vec::new()), "{one:#}");
    let (_, text) = status_text(&[&job]);
    assert!(text.contains("counted from its journal"), "{text}");
    assert!(child.wait().unwrap().success());
    nothing_left(&marker);
}

#[test]
fn a_journal_kept_after_a_run_that_wrote_its_results_is_not_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "kept.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1, \"x\"]\n",
    );
    // What a killed run left: its journal, with no results file.
    let journal = write(
        dir.path(),
        "out/kept.json.journal",
        "{\"journal\":1,\"job\":\"kept\",\"job_file\":\"kept.toml\",\"started_at\":\"2026-11-24T20:00:00.000Z\"}\n\
         {\"begin_task\":{\"name\":\"square\",\"function\":\"builtin:square\",\"function_hash\":\"ab\",\"workers\":1}}\n",
    );
    let one = status_json(&[&job])["jobs"][0].clone();
    assert_eq!(one["state"], "not_running", "{one:#}");
    assert_eq!(
        one["unfinished"][0]["started_at"], "2026-11-24T20:00:00.000Z",
        "{one:#}"
    );
    // A run that fails an item keeps the journal (it holds the earlier run's lines) but
    // wrote its own results: nothing is unfinished any more.
    runjobs().arg(&job).assert().code(1);
    assert!(journal.exists(), "the journal is kept");
    let one = status_json(&[&job])["jobs"][0].clone();
    assert_eq!(one["last_run"]["status"], "failed", "{one:#}");
    assert_eq!(one["unfinished"], Value::Array(Vec::new()), "{one:#}");
}
