//! A worker that crashes is charged to the item that crashed it, whatever the batching:
//! answers a worker finished but had not yet written out are not lost to a later item's
//! crash, and no healthy item is blamed for it.

use serde_json::Value;

use crate::util::*;

const PYTHON_FNS: &str = r#"import os, signal, sys
def f(x):
    if x == 1:
        os._exit(3)
    if x == 5:
        raise KeyboardInterrupt
    if x == 6:
        sys.exit(4)
    if x == 9:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 2:
        return float("nan")
    return x
"#;

/// What `f` does with `x`: `Ok(x)` or a piece of the expected error.
fn expected(x: i64) -> Result<i64, &'static str> {
    match x {
        1 => Err("exit code 3"),
        5 => Err("KeyboardInterrupt"),
        6 => Err("SystemExit: 4"),
        9 => Err("signal 9"),
        2 => Err("not JSON"),
        x => Ok(x),
    }
}

fn check(results: &[Value], inputs: &[i64], what: &str, ok_output: impl Fn(i64) -> Value) {
    assert_eq!(results.len(), inputs.len(), "{what}");
    for (result, &x) in results.iter().zip(inputs) {
        assert_eq!(result["input"], x, "{what}");
        assert_eq!(result["attempts"], 1, "{what}: {result}");
        match expected(x) {
            Ok(_) => {
                assert_eq!(result["status"], "ok", "{what}: {result}");
                assert_eq!(result["output"], ok_output(x), "{what}: {result}");
            }
            Err(piece) => {
                assert_eq!(result["status"], "failed", "{what}: {result}");
                let error = result["error"].as_str().unwrap();
                assert!(error.contains(piece), "{what}: `{piece}` in {result}");
            }
        }
    }
}

fn input_lists() -> Vec<Vec<i64>> {
    let mut lists = vec![
        vec![7, 8, 5],
        vec![7, 8, 1],
        vec![7, 8, 9, 10, 5],
        vec![7, 8, 9, 10, 11, 12, 6],
    ];
    // Crashes among many fast items, so they arrive in big batches.
    let mut long: Vec<i64> = (10..400).collect();
    for (at, x) in [(3, 1), (50, 5), (120, 9), (200, 2), (201, 1), (390, 6)] {
        long.insert(at, x);
    }
    lists.push(long);
    lists
}

#[test]
fn python_crashes_fail_exactly_the_crashing_items() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fns.py", PYTHON_FNS);
    for inputs in input_lists() {
        for workers in [1, 2] {
            let job = write(
                dir.path(),
                "job.toml",
                &format!(
                    "workers = {workers}\n[functions.f]\npython = \"fns.py:f\"\n\
                     [[task]]\nfunction = \"f\"\ninputs = {inputs:?}\n"
                ),
            );
            let out = dir.path().join("out.json");
            runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
            let doc = read_json(&out);
            let what = format!("{workers} workers, inputs {inputs:?}");
            check(results(&doc, 0), &inputs, &what, Value::from);
        }
    }
}

/// An external worker that writes its answers once per read of its input, as many do: a
/// crash loses the answers of the items before it in that read.
const BUFFERING_WORKER: &str = r#"import json, os
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\n")
    answers = []
    for line in lines:
        if not line.strip():
            continue
        request = json.loads(line)
        if request["input"] == 1:
            os._exit(3)
        answers.append(json.dumps({"id": request["id"], "output": request["input"] * 10}))
    if answers:
        os.write(1, ("\n".join(answers) + "\n").encode())
"#;

#[test]
fn an_external_worker_crash_fails_exactly_the_crashing_item() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "worker.py", BUFFERING_WORKER);
    let mut inputs: Vec<i64> = (10..300).collect();
    inputs.insert(0, 1);
    inputs.insert(100, 1);
    inputs.insert(250, 1);
    for workers in [1, 2] {
        let job = write(
            dir.path(),
            "job.toml",
            &format!(
                "workers = {workers}\n[functions.w]\nworker = [\"python3\", \"worker.py\"]\n\
                 [[task]]\nfunction = \"w\"\ninputs = {inputs:?}\n"
            ),
        );
        let out = dir.path().join("out.json");
        runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
        let doc = read_json(&out);
        let what = format!("{workers} workers");
        check(results(&doc, 0), &inputs, &what, |x| Value::from(x * 10));
    }
}

/// Items in big batches (thousands of fast ones) with a hang and a run of slow items among
/// them: the hanging item alone times out (its batch-mates run again uncharged), and slow
/// items that each keep to the timeout are not charged for the time of the ones before them.
#[test]
fn a_hang_inside_a_big_python_batch_times_out_that_item_alone() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "import time\ndef f(x):\n    if x < 0:\n        time.sleep(-x / 10)\n    return x\n",
    );
    for workers in [1, 2] {
        let mut inputs: Vec<i64> = (0..5000).collect();
        // A hang (60 s) and three items of 0.7 s in a row, each under the 1 s timeout.
        inputs.insert(1500, -600);
        for at in [3000, 3001, 3002] {
            inputs.insert(at, -7);
        }
        let job = write(
            dir.path(),
            "job.toml",
            &format!(
                "workers = {workers}\ntimeout = \"1s\"\nkill_grace = \"100ms\"\n\
                 [functions.f]\npython = \"fns.py:f\"\n\
                 [[task]]\nfunction = \"f\"\ninputs = {inputs:?}\n"
            ),
        );
        let out = dir.path().join("out.json");
        let started = std::time::Instant::now();
        runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
        assert!(started.elapsed().as_secs() < 30, "the hang was waited for");
        let doc = read_json(&out);
        let what = format!("{workers} workers");
        let results = results(&doc, 0);
        assert_eq!(results.len(), inputs.len(), "{what}");
        for (result, &x) in results.iter().zip(&inputs) {
            assert_eq!(result["input"], x, "{what}");
            assert_eq!(result["attempts"], 1, "{what}: {result}");
            if x == -600 {
                assert_eq!(result["status"], "timed_out", "{what}: {result}");
            } else {
                assert_eq!(result["status"], "ok", "{what}: {result}");
                assert_eq!(result["output"], x, "{what}: {result}");
            }
        }
    }
}
