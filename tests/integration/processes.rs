//! Real processes: timeouts kill, dead workers are replaced, signals stop the run, and
//! nothing outlives runjobs.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn timeout_kills_the_item_and_the_others_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\ntimeout = \"300ms\"\nkill_grace = \"200ms\"\n\
         [[task]]\nfunction = \"sleep\"\ninputs = [30, 0.01, 30, 0.02, 0.03]\n",
    );
    let out = dir.path().join("out.json");
    let marker = marker("timeout");
    let started = Instant::now();
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .env("RUNJOBS_TEST_MARKER", &marker)
        .assert()
        .code(1);
    let elapsed = started.elapsed();
    // Two 30 s sleeps on two workers, each killed at 300 ms: far below 30 s.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let doc = read_json(&out);
    let statuses: Vec<_> = results(&doc, 0)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["timed_out", "ok", "timed_out", "ok", "ok"]);
    let timed_out = &results(&doc, 0)[0];
    assert!(
        timed_out["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 300ms"),
        "{timed_out}"
    );
    let duration = timed_out["duration_s"].as_f64().unwrap();
    assert!((0.25..2.0).contains(&duration), "{duration}");
    assert_eq!(doc["summary"]["timed_out"], 2);
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

#[test]
fn retries_rerun_a_timed_out_item() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"sleep\"\ntimeout = \"100ms\"\nretries = 2\ninputs = [30, 0]\n",
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc = read_json(&out);
    let r = results(&doc, 0);
    assert_eq!(r[0]["status"], "timed_out");
    assert_eq!(r[0]["attempts"], 3);
    assert_eq!(r[1]["status"], "ok");
    assert_eq!(r[1]["attempts"], 1);
}

#[test]
fn a_worker_killed_from_outside_fails_only_its_item() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\n[[task]]\nfunction = \"sleep\"\ninputs = [3, 3, 0.1, 0.1, 0.1, 0.1]\n",
    );
    let out = dir.path().join("out.json");
    let marker = marker("killworker");
    let mut child = spawn_marked(&job, Some(&out), &marker);
    // Both workers are inside a 3 s item now; kill one (which does not matter: the
    // accounting is checked, not which item it held).
    let workers = wait_for_workers(child.id(), 2);
    std::thread::sleep(Duration::from_millis(300));
    let victim = *workers.iter().min().expect("two workers appeared");
    Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let doc = read_json(&out);
    let results = results(&doc, 0);
    let failed: Vec<_> = results.iter().filter(|r| r["status"] == "failed").collect();
    // The killed worker's 3 s item fails; its replacement and the other worker finish the rest.
    assert_eq!(failed.len(), 1, "{results:?}");
    assert_eq!(
        failed[0]["input"], 3,
        "the item the killed worker was running"
    );
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("killed by signal 9"),
        "{}",
        failed[0]
    );
    assert_eq!(results.iter().filter(|r| r["status"] == "ok").count(), 5);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

#[test]
fn a_builtin_item_retried_after_its_worker_was_killed_counts_both_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 1\nretries = 1\n[[task]]\nfunction = \"sleep\"\ninputs = [0.01, 1.5, 0.01]\n",
    );
    let out = dir.path().join("out.json");
    let marker = marker("retrykilled");
    let mut child = spawn_marked(&job, Some(&out), &marker);
    let workers = wait_for_workers(child.id(), 1);
    // The worker is inside the 1.5 s item by now.
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-KILL", &workers[0].to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let doc = read_json(&out);
    let r = results(&doc, 0);
    let attempts: Vec<_> = r.iter().map(|r| r["attempts"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 1], "{r:?}");
    assert!(r.iter().all(|r| r["status"] == "ok"), "{r:?}");
    // The second attempt ran in the replacement worker, which wrote the record itself.
    assert_ne!(r[1]["worker"], workers[0]);
    assert_eq!(r[0]["worker"], workers[0]);
    assert!(r[1]["started_s"].as_f64().unwrap() >= 0.5, "{}", r[1]);
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

#[test]
fn sigint_stops_the_run_writes_partial_results_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\nkill_grace = \"200ms\"\n[[task]]\nfunction = \"sleep\"\ninputs = [0.01, 0.01, 30, 30, 30, 30, 30]\n",
    );
    let out = dir.path().join("out.json");
    let marker = marker("sigint");
    let mut child = spawn_marked(&job, Some(&out), &marker);
    // Wait until both 30 s items are running (two workers are busy).
    wait_for_workers(child.id(), 2);
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        sent.elapsed() < Duration::from_millis(200 + 1000),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(3));
    let doc = read_json(&out);
    assert_eq!(doc["status"], "interrupted");
    let results = results(&doc, 0);
    assert_eq!(results.len(), 7);
    assert_eq!(results[0]["status"], "ok");
    assert_eq!(results[1]["status"], "ok");
    assert_eq!(
        results.iter().filter(|r| r["status"] == "failed").count(),
        2,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| r["status"] == "skipped").count(),
        3
    );
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

#[test]
fn many_small_items_are_all_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 3\n[[task]]\nfunction = \"square\"\ninputs = { range = [0, 100000] }\n",
    );
    let out = dir.path().join("out.jsonl");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut seen = vec![false; 100_000];
    for line in text.lines().take(100_000) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let i = v["index"].as_u64().unwrap() as usize;
        assert!(!seen[i], "index {i} twice");
        seen[i] = true;
        assert_eq!(v["output"].as_i64().unwrap(), (i as i64) * (i as i64));
    }
    assert!(seen.iter().all(|s| *s));
}

/// A fast item answered just before a hanging one must not take the blame for the hang,
/// even when both were sent in one batch (regression: answers sat unflushed in the worker).
#[test]
fn timeout_blames_the_hanging_item_not_the_one_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<String> = vec!["0".into(); 40];
    inputs.push("30".into());
    inputs.extend(vec!["0".to_owned(); 5]);
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "workers = 1\ntimeout = \"300ms\"\nkill_grace = \"100ms\"\n[[task]]\nfunction = \"sleep\"\ninputs = [{}]\n",
            inputs.join(", ")
        ),
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc = read_json(&out);
    let timed_out: Vec<u64> = results(&doc, 0)
        .iter()
        .filter(|r| r["status"] != "ok")
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(timed_out, [40], "{:?}", results(&doc, 0));
}

#[test]
fn a_second_run_of_the_same_job_exits_4_while_the_first_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[output]\npath = \"out/{job}.json\"\n[[task]]\nfunction = \"sleep\"\nworkers = 1\ninputs = [3.0]\n",
    );
    let mut first = spawn_marked(&job, None, &marker("lockfirst"));
    wait_for_workers(first.id(), 1);
    let started = Instant::now();
    let second = runjobs().arg(&job).output().unwrap();
    // "At once": well before the first run's 3 s item could have ended.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the second run waited"
    );
    assert_eq!(second.status.code(), Some(4));
    let message = stderr(&second);
    assert!(
        message.contains("already running") && message.contains(&format!("pid {}", first.id())),
        "{message}"
    );
    assert!(first.wait().unwrap().success());
    let doc = read_json(&dir.path().join("out/job.json"));
    assert_eq!(doc["status"], "ok");
}

#[test]
fn a_lock_left_by_a_killed_run_does_not_block_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"sleep\"\nworkers = 1\ninputs = [30]\n",
    );
    let marker = marker("killedlock");
    let mut first = spawn_marked(&job, None, &marker);
    wait_for_workers(first.id(), 1);
    Command::new("kill")
        .args(["-KILL", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();
    // Its worker dies with it (PR_SET_PDEATHSIG).
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
    let quick = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"sleep\"\nworkers = 1\ninputs = [0]\n",
    );
    runjobs().arg(&quick).assert().code(0);
}

/// A `range` is sent to builtin workers as runs of items; an item of a run that times out or
/// fails is charged alone, and the rest of its run is handed back or kept.
#[test]
fn an_item_inside_a_range_run_times_out_or_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Sleeping 0 s, then 1 s and 2 s, sent together once the first was quick: both time out,
    // the second after being handed back to a fresh worker.
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 1\ntimeout = \"300ms\"\nkill_grace = \"100ms\"\n\
         [[task]]\nname = \"naps\"\nfunction = \"sleep\"\ninputs = { range = [0, 3] }\n\
         [[task]]\nname = \"fibs\"\nfunction = \"fib\"\ninputs = { range = [0, 400, 2] }\n",
    );
    let out = dir.path().join("out.json");
    let started = Instant::now();
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    assert!(started.elapsed() < Duration::from_secs(5));
    let doc = read_json(&out);
    let naps = results(&doc, 0);
    let statuses: Vec<&str> = naps.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "timed_out", "timed_out"]);
    assert!(naps.iter().all(|r| r["attempts"] == 1), "{naps:?}");
    assert_ne!(naps[1]["worker"], naps[2]["worker"]);
    // fib(n) fits up to n = 93: items 0..=46 are ok, the rest fail, each on its own.
    let fibs = results(&doc, 1);
    assert_eq!(fibs.len(), 200);
    let (mut a, mut b) = (0u64, 1u64);
    for (k, r) in fibs.iter().enumerate() {
        assert_eq!(r["index"], k);
        assert_eq!(r["input"], 2 * k);
        if k <= 46 {
            assert_eq!(
                (r["status"].as_str(), r["output"].as_u64()),
                (Some("ok"), Some(a))
            );
        } else {
            assert_eq!(r["status"], "failed");
            assert!(r["error"].as_str().unwrap().contains("overflow"), "{r}");
        }
        (a, b) = (b, a.wrapping_add(b));
        (a, b) = (b, a.wrapping_add(b));
    }
}

/// SIGTERM while a builtin worker holds a run of `range` items: the item it was running
/// fails, the rest of its run and of the range are reported skipped, none is lost.
#[test]
fn sigterm_during_a_range_run_skips_the_rest_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // sleep(0) first; then 1, 2, 3… are sent together, and sleep(1) is running when the
    // signal comes.
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 1\nkill_grace = \"200ms\"\n\
         [[task]]\nfunction = \"sleep\"\ninputs = { range = [0, 40] }\n",
    );
    let out = dir.path().join("out.json");
    let marker = marker("sigterm-run");
    let mut child = spawn_marked(&job, Some(&out), &marker);
    wait_for_workers(child.id(), 1);
    std::thread::sleep(Duration::from_millis(400));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let doc = read_json(&out);
    let results = results(&doc, 0);
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    let mut expected = vec!["ok", "failed"];
    expected.resize(40, "skipped");
    assert_eq!(statuses, expected);
    assert_eq!(results[1]["attempts"], 1);
    assert!(
        results[2..].iter().all(|r| r["attempts"] == 0),
        "{results:?}"
    );
    let inputs: Vec<u64> = results
        .iter()
        .map(|r| r["input"].as_u64().unwrap())
        .collect();
    assert_eq!(inputs, (0..40).collect::<Vec<u64>>());
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}
