//! `--executor slurm` against a real Slurm cluster (`scripts/slurm-local.sh start` gives a
//! one-node one; CI starts it and sets `RUNJOBS_REQUIRE_SLURM=1`, so that a skip fails
//! there). The bad-settings tests need no cluster: they use fake Slurm commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// One Slurm test at a time: the local cluster has few CPUs, and the tests time things.
static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, held for this test; `None` (the test says it is skipped) without one.
pub fn cluster() -> Option<MutexGuard<'static, ()>> {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .is_some_and(|states| {
            states.split_whitespace().any(|s| {
                matches!(
                    s.trim_end_matches('*'),
                    "idle" | "mixed" | "allocated" | "completing"
                )
            })
        });
    if !up {
        assert!(
            std::env::var_os("RUNJOBS_REQUIRE_SLURM").is_none(),
            "RUNJOBS_REQUIRE_SLURM is set, but no Slurm node is up (`scripts/slurm-local.sh start`)"
        );
        eprintln!(
            "skipped: no Slurm cluster is up here (start one with `scripts/slurm-local.sh start`)"
        );
        return None;
    }
    Some(CLUSTER.lock().unwrap_or_else(|p| p.into_inner()))
}

/// `(index, input, status, output)` of a result.
type Outcome = (u64, Value, Value, Value);

/// The outcome of every result of every task, and the node of each.
fn outcomes(doc: &Value) -> (Vec<Outcome>, Vec<Value>) {
    let mut seen = Vec::new();
    let mut nodes = Vec::new();
    for task in doc["tasks"].as_array().unwrap() {
        for r in task["results"].as_array().unwrap() {
            seen.push((
                r["index"].as_u64().unwrap(),
                r["input"].clone(),
                r["status"].clone(),
                r["output"].clone(),
            ));
            nodes.push(r["node"].clone());
        }
    }
    (seen, nodes)
}

/// What `squeue` lists of job `id` that is still active.
fn active(id: u64) -> String {
    let out = Command::new("squeue")
        .args([
            "-h",
            "-r",
            "-t",
            "PD,R,CG,CF,S",
            "-o",
            "%i %T",
            "-j",
            &id.to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (up to `limit`) for `path` to exist; its contents.
fn wait_for_file(path: &Path, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The only submission folder under a spool root.
fn submission(root: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(entry) = std::fs::read_dir(root)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        {
            return entry.path();
        }
        assert!(
            Instant::now() < deadline,
            "no submission under {}",
            root.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ok records in the shard journals of a submission.
fn journaled_ok(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                .map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .matches("\"status\":\"ok\"")
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A runjobs following its array: the child, the submission's spool folder, the array id.
struct Following {
    child: std::process::Child,
    spool: PathBuf,
    id: u64,
}

/// Starts `runjobs JOB -o OUT` (with `marker` in its environment) and waits until its array
/// is submitted and its shards have journaled `ok` results of at least `results` items.
fn start_following(job: &Path, out: &Path, marker: &str, results: usize) -> Following {
    let child = Command::new(BIN)
        .arg(job)
        .args(["--progress", "never", "-o"])
        .arg(out)
        .env("RUNJOBS_TEST_MARKER", marker)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut root = out.as_os_str().to_owned();
    root.push(".slurm");
    let spool = submission(Path::new(&root));
    let id: u64 = wait_for_file(&spool.join("array-id"), Duration::from_secs(30))
        .expect("the array id is written")
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while journaled_ok(&spool) < results {
        assert!(Instant::now() < deadline, "no results from the shards");
        std::thread::sleep(Duration::from_millis(20));
    }
    Following { child, spool, id }
}

#[test]
fn the_shipped_square_job_and_a_range_give_a_local_runs_outputs_each_naming_its_node() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "range.toml",
        "workers = 4\n[[task]]\nfunction = \"square\"\ninputs = { range = [0, 40] }\n\
         [[task]]\nname = \"sum\"\nfunction = \"double\"\ninputs = { from = \"square\" }\n",
    );
    let square = repo().join("jobs/square.toml");
    for (job, name) in [(&square, "square"), (&job, "range")] {
        let local = dir.path().join(format!("{name}-local.json"));
        runjobs().arg(job).arg("-o").arg(&local).assert().success();
        for ext in ["json", "toml", "jsonl"] {
            let out = dir.path().join(format!("{name}-slurm.{ext}"));
            let run = runjobs()
                .arg(job)
                .args(["--executor", "slurm", "-o"])
                .arg(&out)
                .timeout(Duration::from_secs(120))
                .output()
                .unwrap();
            assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
            assert!(
                stderr(&run).contains("submitted job array"),
                "{}",
                stderr(&run)
            );
            let doc = match ext {
                "json" => read_json(&out),
                // The report's JSON reads every format alike.
                _ => json_of(&out),
            };
            let (seen, nodes) = outcomes(&doc);
            let (want, _) = outcomes(&read_json(&local));
            assert_eq!(seen, want, "{ext}: the same outputs in input order");
            assert!(
                nodes
                    .iter()
                    .all(|n| n.as_str().is_some_and(|n| !n.is_empty())),
                "{ext}: every result names its node: {nodes:?}"
            );
            // A clean run leaves no spool behind.
            assert!(!out.with_extension(format!("{ext}.slurm")).exists());
        }
    }
}

/// A TOML or JSON Lines results file as the JSON tree it stands for.
fn json_of(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "toml") {
        let tree: toml::Table = toml::from_str(&text).unwrap();
        return serde_json::to_value(tree).unwrap();
    }
    // JSON Lines: a line an item (with `task`), then the summary line with the tasks.
    let mut tasks: Vec<Value> = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("index").is_some() {
            items.push(v);
        } else if let Some(t) = v.get("tasks") {
            tasks = t.as_array().unwrap().clone();
        }
    }
    for task in &mut tasks {
        let name = task["name"].clone();
        let mut results: Vec<Value> = items
            .iter()
            .filter(|i| i["task"] == name)
            .cloned()
            .collect();
        results.sort_by_key(|r| r["index"].as_u64());
        task["results"] = Value::Array(results);
    }
    serde_json::json!({ "tasks": tasks })
}

#[test]
fn a_timeout_and_a_bad_input_fail_only_their_items_as_in_a_local_run() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<String> = (0..40).map(|_| "0.01".to_owned()).collect();
    inputs[7] = "5".into();
    inputs[29] = "\"soon\"".into();
    let job = write(
        dir.path(),
        "mixed.toml",
        &format!(
            "workers = 4\ntimeout = \"1s\"\n[[task]]\nfunction = \"sleep\"\ninputs = [{}]\n\
             [executor]\nkind = \"slurm\"\nshards = 4\n",
            inputs.join(", ")
        ),
    );
    let local = dir.path().join("local.json");
    let slurm = dir.path().join("slurm.json");
    runjobs()
        .arg(&job)
        .args(["--executor", "local", "-o"])
        .arg(&local)
        .assert()
        .code(1);
    let run = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&slurm)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let statuses = |doc: &Value| -> Vec<(Value, Option<String>)> {
        results(doc, 0)
            .iter()
            .map(|r| (r["status"].clone(), r["error"].as_str().map(str::to_owned)))
            .collect()
    };
    let (local, slurm) = (read_json(&local), read_json(&slurm));
    assert_eq!(statuses(&slurm), statuses(&local));
    assert_eq!(results(&slurm, 0)[7]["status"], "timed_out");
    assert_eq!(results(&slurm, 0)[29]["status"], "failed");
    assert_eq!(slurm["summary"]["ok"], 38);
    let nodes: std::collections::BTreeSet<String> = results(&slurm, 0)
        .iter()
        .map(|r| r["node"].as_str().unwrap().to_owned())
        .collect();
    assert!(!nodes.is_empty());
}

/// A job of `n` items that take `seconds` each, over `shards` shards.
fn slow_job(dir: &Path, n: usize, seconds: f64, shards: usize) -> PathBuf {
    write(
        dir,
        "slow.toml",
        &format!(
            "workers = {shards}\n[functions.nap]\ncommand = [\"sh\", \"-c\", \"sleep {seconds}; echo $1\", \"sh\", \"{{input}}\"]\n\
             [[task]]\nfunction = \"nap\"\ninputs = {{ range = [0, {n}] }}\n\
             [executor]\nkind = \"slurm\"\n"
        ),
    )
}

#[test]
fn scancel_fails_the_unfinished_items_as_cancelled_and_resume_reruns_only_those() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = slow_job(dir.path(), 40, 0.3, 4);
    let out = dir.path().join("out.json");
    let Following { child, spool, id } = start_following(&job, &out, &marker("slurm-scancel"), 3);
    assert!(
        Command::new("scancel")
            .arg(id.to_string())
            .status()
            .unwrap()
            .success()
    );
    let run = child.wait_with_output().unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let doc = read_json(&out);
    let first = results(&doc, 0).clone();
    let ok: Vec<u64> = first
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert!(ok.len() >= 3 && ok.len() < 40, "{ok:?}");
    for r in first.iter().filter(|r| r["status"] != "ok") {
        assert_eq!(r["status"], "failed", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(error.starts_with("CANCELLED"), "{error}");
    }
    // The cancelled submission's spool stays for the logs and `--resume`.
    assert!(spool.exists());

    let resumed = runjobs()
        .arg(&job)
        .arg("--resume")
        .arg(&out)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let doc = read_json(&out);
    let again = results(&doc, 0);
    assert_eq!(again.len(), 40);
    for r in again {
        let index = r["index"].as_u64().unwrap();
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["output"], Value::from(index.to_string()), "{r}");
        // Finished before: reused, not rerun; the rest ran in the new submission.
        assert_eq!(r.get("reused_from").is_some(), ok.contains(&index), "{r}");
    }
    // Everything is in the results now: no spool is left.
    assert!(!dir.path().join("out.json.slurm").exists());
}

#[test]
fn sigterm_cancels_the_array_writes_partial_results_and_exits_3() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = slow_job(dir.path(), 40, 0.3, 2);
    let out = dir.path().join("out.json");
    let mark = marker("slurm-sigterm");
    let Following {
        child,
        spool: _,
        id,
    } = start_following(&job, &out, &mark, 2);
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let run = child.wait_with_output().unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !active(id).trim().is_empty() {
        assert!(Instant::now() < deadline, "still queued: {}", active(id));
        std::thread::sleep(Duration::from_millis(200));
    }
    let doc = read_json(&out);
    assert_eq!(doc["status"], "interrupted");
    assert_eq!(
        results(&doc, 0).len(),
        40,
        "partial results: every item reported"
    );
    assert!(
        doc["summary"]["ok"].as_u64().unwrap() >= 2,
        "{}",
        doc["summary"]
    );
    assert!(
        wait_until_gone(&mark, Duration::from_secs(20)).is_empty(),
        "no shard or item process outlives the cancelled array"
    );
}

#[test]
fn command_and_python_functions_run_on_the_cluster() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    for job in ["jobs/commands.toml", "jobs/square_py.toml"] {
        let out = dir.path().join("out.json");
        let run = runjobs()
            .arg(repo().join(job))
            .args(["--executor", "slurm", "-q", "-o"])
            .arg(&out)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0), "{job}: {}", stderr(&run));
        let doc = read_json(&out);
        let (seen, nodes) = outcomes(&doc);
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(|(_, _, status, _)| status == "ok"),
            "{job}: {seen:?}"
        );
        assert!(nodes.iter().all(Value::is_string), "{job}: {nodes:?}");
    }
    let doc = read_json(&dir.path().join("out.json"));
    assert_eq!(outputs(&doc, 0), [1, 4, 9, 16].map(Value::from));
}

#[test]
fn shards_record_the_state_of_the_files_they_read_and_reuse_follows_it() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("a", "one"), ("b", "two two"), ("c", "three three three")] {
        write(dir.path(), &format!("data/{name}.txt"), text);
    }
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"word_count\"\ninputs = { glob = \"data/*.txt\" }\n\
         [executor]\nkind = \"slurm\"\nshards = 2\n",
    );
    let run = |out: &str, reuse: Option<&str>| {
        let mut command = runjobs();
        command.arg(&job).arg("-o").arg(dir.path().join(out));
        if let Some(from) = reuse {
            command.arg("--reuse").arg(dir.path().join(from));
        }
        let output = command.timeout(Duration::from_secs(120)).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        read_json(&dir.path().join(out))
    };
    let first = run("first.json", None);
    let results = first["tasks"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        let fingerprint = result["fingerprint"].as_str().unwrap_or_default();
        assert!(fingerprint.starts_with("mtime:"), "{result}");
        assert!(result["node"].is_string(), "{result}");
    }
    // Grown (a new size): only that file's item runs again, on the cluster.
    std::fs::write(dir.path().join("data/b.txt"), "two two two").unwrap();
    let second = run("second.json", Some("first.json"));
    let results = second["tasks"][0]["results"].as_array().unwrap();
    let fresh: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("reused_from").is_none())
        .collect();
    assert_eq!(fresh.len(), 1, "{second}");
    assert_eq!(fresh[0]["input"], "data/b.txt");
    assert_eq!(fresh[0]["output"], 3);
    assert_eq!(second["summary"]["reused"], 2);
}

/// Fake Slurm commands in `dir/folder`: each appends its name and arguments to `dir/calls`,
/// then runs its `sh` body.
fn fake_commands(dir: &Path, folder: &str, commands: &[(&str, &str)]) -> PathBuf {
    let bin = dir.join(folder);
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    for (name, body) in commands {
        let path = write(
            &bin,
            name,
            &format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{body}\n",
                calls.display()
            ),
        );
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
    bin
}

/// Fake Slurm commands: `sinfo` lists the partition `debug`; `sbatch` (if any) fails like a
/// cluster that refuses the job.
fn fake_slurm(dir: &Path, with_sbatch: bool) -> PathBuf {
    let refuse = "echo 'sbatch: error: Batch job submission failed: Invalid account or \
                  account/partition combination specified' >&2; exit 1";
    let mut commands = vec![
        ("squeue", "exit 0"),
        ("scancel", "exit 0"),
        ("sinfo", "echo debug"),
    ];
    if with_sbatch {
        commands.push(("sbatch", refuse));
    }
    let folder = if with_sbatch {
        "fake-bin"
    } else {
        "fake-bin-no-sbatch"
    };
    fake_commands(dir, folder, &commands)
}

#[test]
fn bad_executor_settings_exit_2_before_anything_is_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let job = |name: &str, executor: &str| {
        write(
            dir.path(),
            name,
            &format!(
                "[[task]]\nfunction = \"square\"\ninputs = [1, 2]\n[executor]\nkind = \"slurm\"\n{executor}\n"
            ),
        )
    };
    let cases = [
        (
            job("typo.toml", "partiton = \"debug\""),
            true,
            "did you mean `partition`?",
        ),
        (
            job("partition.toml", "partition = \"debgu\""),
            true,
            "no such partition; did you mean `debug`?",
        ),
        (
            job("spool.toml", "spool = \"/proc/no-such/spool\""),
            true,
            "is not writable",
        ),
        (
            job("time.toml", "time = \"an hour\""),
            true,
            "time limit in Slurm's form",
        ),
        (job("nosbatch.toml", ""), false, "no `sbatch` on PATH"),
    ];
    for (job, with_sbatch, said) in cases {
        let bin = fake_slurm(dir.path(), with_sbatch);
        let run = runjobs()
            .arg(&job)
            .arg("-o")
            .arg(dir.path().join("out.json"))
            .env("PATH", &bin)
            .output()
            .unwrap();
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{}: {err}", job.display());
        assert!(err.contains(said), "{}: {err}", job.display());
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap_or_default();
        assert!(
            !calls.contains("sbatch"),
            "{}: sbatch was called: {calls}",
            job.display()
        );
    }
    // `--executor slurm` on a job without `[executor]` is checked alike.
    let plain = write(
        dir.path(),
        "plain.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    let run = runjobs()
        .arg(&plain)
        .args(["--executor", "slurm", "-o"])
        .arg(dir.path().join("out.json"))
        .env("PATH", dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
}

#[test]
fn a_refused_submission_fails_every_item_with_sbatchs_words_and_asks_for_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_slurm(dir.path(), true);
    let job = write(
        dir.path(),
        "job.toml",
        "deadline = \"90s\"\n[[task]]\nfunction = \"square\"\ninputs = { range = [0, 10] }\nworkers = 3\n\
         [executor]\nkind = \"slurm\"\npartition = \"debug\"\naccount = \"lab\"\nmem = \"2G\"\n\
         cpus_per_task = 2\nmax_running = 2\nsbatch_args = [\"--qos=short\"]\n",
    );
    let out = dir.path().join("out.json");
    let run = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let doc = read_json(&out);
    assert_eq!(doc["summary"]["failed"], 10);
    for r in results(&doc, 0) {
        assert!(
            r["error"].as_str().unwrap().contains("Invalid account"),
            "{r}"
        );
    }
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let sbatch = calls.lines().find(|l| l.starts_with("sbatch ")).unwrap();
    for arg in [
        "--parsable",
        "--array=0-2%2",
        "--time=3",
        "--partition=debug",
        "--account=lab",
        "--cpus-per-task=2",
        "--mem=2G",
        "--no-requeue",
        "--qos=short",
    ] {
        assert!(sbatch.split(' ').any(|a| a == arg), "{arg} in {sbatch}");
    }
    assert!(sbatch.ends_with("shard.sh"), "{sbatch}");
}

#[test]
fn after_a_sigkill_the_array_runs_on_and_resume_takes_what_its_shards_journaled() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = slow_job(dir.path(), 12, 0.2, 2);
    let out = dir.path().join("out.json");
    let Following {
        mut child,
        spool,
        id,
    } = start_following(&job, &out, &marker("slurm-sigkill"), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed runjobs writes no results file");
    // Nobody follows the array now; it finishes on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !active(id).trim().is_empty() {
        assert!(Instant::now() < deadline, "still queued: {}", active(id));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(journaled_ok(&spool), 12, "the shards finished every item");
    let resumed = runjobs()
        .arg(&job)
        .arg("--resume")
        .arg(&out)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let err = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{err}");
    assert!(err.contains("shard journals"), "{err}");
    assert!(
        !err.contains("submitted job array"),
        "nothing is left to run: {err}"
    );
    let doc = read_json(&out);
    assert_eq!(results(&doc, 0).len(), 12);
    for r in results(&doc, 0) {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r.get("reused_from").is_some(), "{r}");
        assert!(r["node"].is_string(), "the node is kept: {r}");
    }
    assert!(
        !dir.path().join("out.json.slurm").exists(),
        "the rescued spool went"
    );
}

#[test]
fn the_jobs_deadline_cancels_the_array_and_skips_what_did_not_finish() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = slow_job(dir.path(), 40, 0.5, 2);
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, format!("deadline = \"4s\"\n{text}")).unwrap();
    let out = dir.path().join("out.json");
    let started = Instant::now();
    let run = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let doc = read_json(&out);
    assert_eq!(doc["status"], "failed");
    assert_eq!(results(&doc, 0).len(), 40);
    let skipped: Vec<&Value> = results(&doc, 0)
        .iter()
        .filter(|r| r["status"] == "skipped")
        .collect();
    assert!(!skipped.is_empty(), "{}", doc["summary"]);
    assert!(
        skipped
            .iter()
            .all(|r| r["error"].as_str().unwrap().contains("deadline")),
        "{skipped:?}"
    );
    let id: u64 = std::fs::read_dir(dir.path().join("out.json.slurm"))
        .unwrap()
        .find_map(|e| std::fs::read_to_string(e.ok()?.path().join("array-id")).ok())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(active(id).trim().is_empty(), "cancelled: {}", active(id));
}

/// Fake Slurm commands that accept a submission and then say what `squeue` says.
fn fake_cluster(dir: &Path, squeue: &str) -> PathBuf {
    fake_commands(
        dir,
        "fake-cluster",
        &[
            ("sbatch", "echo 4242"),
            ("squeue", squeue),
            ("scancel", "exit 0"),
            ("sinfo", "echo debug"),
        ],
    )
}

fn run_on_fake_cluster(dir: &Path, squeue: &str, env: &[(&str, &str)]) -> (Output, Value) {
    let bin = fake_cluster(dir, squeue);
    let job = write(
        dir,
        "job.toml",
        "workers = 2\n[[task]]\nfunction = \"square\"\ninputs = [1, 2, 3]\n[executor]\nkind = \"slurm\"\n",
    );
    let out = dir.join("out.json");
    let mut cmd = runjobs();
    cmd.arg(&job)
        .arg("-o")
        .arg(&out)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = cmd.output().unwrap();
    let doc = read_json(&out);
    (run, doc)
}

#[test]
fn shards_slurm_forgets_without_results_are_failed_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Listed as pending once, then never again (purged, or a controller that lost its state).
    let squeue = format!(
        "if [ -e '{0}/listed' ]; then exit 0; fi; touch '{0}/listed'; echo '0|PENDING|Priority'; echo '1|PENDING|Priority'",
        dir.path().display()
    );
    let started = Instant::now();
    let (run, doc) = run_on_fake_cluster(dir.path(), &squeue, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(doc["summary"]["failed"], 3, "{doc}");
    for r in results(&doc, 0) {
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with("lost: Slurm no longer knows array task 4242_")
                && error.contains("last seen PENDING"),
            "{error}"
        );
    }
}

#[test]
fn a_controller_that_stops_answering_is_waited_for_only_so_long() {
    let dir = tempfile::tempdir().unwrap();
    let squeue =
        "echo 'squeue: error: Unable to contact slurm controller (connect failure)' >&2; exit 1";
    let started = Instant::now();
    let (run, doc) =
        run_on_fake_cluster(dir.path(), squeue, &[("RUNJOBS_SLURM_SILENT_LIMIT", "2s")]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(started.elapsed() < Duration::from_secs(30));
    for r in results(&doc, 0) {
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with("lost: `squeue` has not answered for 2s")
                && error.contains("Unable to contact slurm controller"),
            "{error}"
        );
    }
    // The spool stays: its journals are what `--resume` would take from shards that ran.
    assert!(dir.path().join("out.json.slurm").exists());
}

#[test]
fn a_relative_output_path_is_the_current_folders_not_the_job_folders() {
    let Some(_cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        &dir.path().join("jobs"),
        "job.toml",
        "workers = 2\n[[task]]\nfunction = \"square\"\ninputs = [1, 2, 3]\n[executor]\nkind = \"slurm\"\n",
    );
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let run = runjobs()
        .current_dir(&work)
        .arg(&job)
        .args(["-o", "out/rel.json"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc = read_json(&work.join("out/rel.json"));
    assert_eq!(outputs(&doc, 0), [1, 4, 9].map(Value::from));
    assert!(!work.join("out/rel.json.slurm").exists());
    assert!(
        !dir.path().join("jobs/out").exists(),
        "nothing went to the job's folder"
    );
}

#[test]
fn a_shard_slurm_will_never_start_fails_its_items_and_the_array_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let squeue = "echo '0|PENDING|PartitionTimeLimit'; echo '1|PENDING|PartitionTimeLimit'";
    let (run, doc) = run_on_fake_cluster(dir.path(), squeue, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    for r in results(&doc, 0) {
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("pending for `PartitionTimeLimit`"),
            "{error}"
        );
    }
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert!(calls.lines().any(|l| l == "scancel 4242"), "{calls}");
}
