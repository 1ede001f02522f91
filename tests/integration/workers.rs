//! Long-lived `worker = [...]` and `python = "file:function"` functions.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::util::*;

/// A worker that doubles numbers, prints garbage for 3 and exits for 5.
const FLAKY_WORKER: &str = r#"
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    if req["input"] == 3:
        print("garbage, not a reply", flush=True)
        continue
    if req["input"] == 5:
        print("exiting on purpose", file=sys.stderr, flush=True)
        sys.exit(4)
    print(json.dumps({"id": req["id"], "output": req["input"] * 2}), flush=True)
"#;

fn run_in(dir: &std::path::Path, job: &str) -> (Option<i32>, Value, String) {
    let path = write(dir, "job.toml", job);
    let out = dir.join("out.json");
    let output = runjobs().arg(&path).arg("-o").arg(&out).output().unwrap();
    (output.status.code(), read_json(&out), stderr(&output))
}

#[test]
fn a_worker_that_breaks_the_protocol_or_exits_fails_only_those_items() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flaky.py", FLAKY_WORKER);
    let (code, doc, err) = run_in(
        dir.path(),
        "workers = 2\n[functions.w]\nworker = [\"python3\", \"flaky.py\"]\n[[task]]\nfunction = \"w\"\ninputs = [1, 2, 3, 4, 5, 6, 7]\n",
    );
    assert_eq!(code, Some(1), "{err}");
    let r = results(&doc, 0);
    let statuses: Vec<&str> = r.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "ok", "failed", "ok", "failed", "ok", "ok"]);
    assert_eq!(outputs(&doc, 0)[6], json!(14));
    let garbage = r[2]["error"].as_str().unwrap();
    assert!(
        garbage.contains("broke the protocol") && garbage.contains("garbage, not a reply"),
        "{garbage}"
    );
    let exited = r[4]["error"].as_str().unwrap();
    assert!(
        exited.contains("exit code 4") && exited.contains("exiting on purpose"),
        "{exited}"
    );
}

#[test]
fn max_items_per_worker_recycles_workers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flaky.py", FLAKY_WORKER);
    let (code, doc, err) = run_in(
        dir.path(),
        "workers = 1\n[functions.w]\nworker = [\"python3\", \"flaky.py\"]\nmax_items_per_worker = 2\n\
         [[task]]\nfunction = \"w\"\ninputs = [1, 2, 4, 6, 7, 8]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let pids: HashSet<u64> = results(&doc, 0)
        .iter()
        .map(|r| r["worker"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
}

#[test]
fn a_worker_timeout_replaces_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "slow.py",
        "import json, sys, time\nfor line in sys.stdin:\n    r = json.loads(line)\n    time.sleep(r['input'])\n    print(json.dumps({'id': r['id'], 'output': r['input']}), flush=True)\n",
    );
    let marker = marker("workertimeout");
    let path = write(
        dir.path(),
        "job.toml",
        "timeout = \"300ms\"\nkill_grace = \"100ms\"\n[functions.w]\nworker = [\"python3\", \"slow.py\"]\n\
         [[task]]\nfunction = \"w\"\ninputs = [0, 30, 0.01]\n",
    );
    let out = dir.path().join("out.json");
    runjobs()
        .arg(&path)
        .arg("-o")
        .arg(&out)
        .env("RUNJOBS_TEST_MARKER", &marker)
        .assert()
        .code(1);
    let doc = read_json(&out);
    let statuses: Vec<_> = results(&doc, 0)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["ok", "timed_out", "ok"]);
    assert_eq!(
        wait_until_gone(&marker, std::time::Duration::from_secs(1)),
        Vec::<u32>::new()
    );
}

#[test]
fn the_shipped_python_job_squares_with_python_workers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sq.json");
    let output = runjobs()
        .arg(repo().join("jobs/square_py.toml"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = read_json(&out);
    assert_eq!(outputs(&doc, 0), [json!(1), json!(4), json!(9), json!(16)]);
    assert!(
        doc["tasks"][0]["function"]
            .as_str()
            .unwrap()
            .starts_with("python:")
    );
}

/// A `range` goes to Python workers as `range` batches, whatever its step: every item gets
/// its own input (near the top of 64 bits too, where the range's stop is past them), in
/// every format.
#[test]
fn python_workers_get_every_input_of_stepped_ranges() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "def f(x):\n    return [x, x % 7, x + 1]\n",
    );
    let top = i64::MAX - 50;
    let ranges = [(0, 5000, 3), (100, -400, -7), (top, i64::MAX, 20)];
    let mut job = "workers = 2\n[functions.f]\npython = \"fns.py:f\"\n".to_string();
    for (task, (start, stop, step)) in ranges.iter().enumerate() {
        job.push_str(&format!(
            "[[task]]\nname = \"t{task}\"\nfunction = \"f\"\n\
             inputs = {{ range = [{start}, {stop}, {step}] }}\n"
        ));
    }
    let job = write(dir.path(), "job.toml", &job);
    for format in ["json", "jsonl", "toml"] {
        let out = dir.path().join(format!("out.{format}"));
        let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        for (task, (start, stop, step)) in ranges.into_iter().enumerate() {
            let inputs: Vec<i128> = (0..)
                .map(|k| i128::from(start) + k * i128::from(step))
                .take_while(|x| (*x < i128::from(stop)) == (step > 0) && *x != i128::from(stop))
                .collect();
            let records = task_records(&out, format, task);
            assert_eq!(records.len(), inputs.len(), "{format} task {task}");
            for (k, (record, x)) in records.iter().zip(&inputs).enumerate() {
                assert_eq!(record["index"], k as u64, "{format}: {record}");
                assert_eq!(record["status"], "ok", "{format}: {record}");
                assert_eq!(record["input"].to_string(), x.to_string(), "{format}");
                let expected = [
                    x.to_string(),
                    x.rem_euclid(7).to_string(),
                    (x + 1).to_string(),
                ];
                let output: Vec<String> = record["output"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(Value::to_string)
                    .collect();
                assert_eq!(output, expected, "{format}: {record}");
            }
        }
    }
}

/// Plain integers of 64 bits come from the shim as their bytes: every one comes back exact,
/// at the edges of 64 bits and past them (those batches go as JSON), and booleans, alone or
/// among integers, stay booleans.
#[test]
fn python_integers_come_back_exact_at_the_edges_of_64_bits_and_booleans_stay_booleans() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "EDGES = [0, -1, 2**63 - 1, -2**63, 12345]\n\
         def edges(x):\n    return EDGES[x % 5]\n\
         def past(x):\n    return 2**63 + x\n\
         def bools(x):\n    return x % 2 == 0\n\
         def mixed(x):\n    return x if x % 2 else x % 4 == 0\n",
    );
    let mut job = "workers = 2\n".to_string();
    for name in ["edges", "past", "bools", "mixed"] {
        job.push_str(&format!(
            "[functions.{name}]\npython = \"fns.py:{name}\"\n\
             [[task]]\nfunction = \"{name}\"\ninputs = {{ range = [0, 3000] }}\n"
        ));
    }
    let (code, doc, err) = run_in(dir.path(), &job);
    assert_eq!(code, Some(0), "{err}");
    let edges = [
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(12345),
    ];
    for (task, expected) in [
        Box::new(|x: u64| edges[(x % 5) as usize].clone()) as Box<dyn Fn(u64) -> Value>,
        Box::new(|x: u64| json!((1u64 << 63) + x)),
        Box::new(|x: u64| json!(x.is_multiple_of(2))),
        Box::new(|x: u64| {
            if x % 2 == 1 {
                json!(x)
            } else {
                json!(x.is_multiple_of(4))
            }
        }),
    ]
    .iter()
    .enumerate()
    {
        let outputs = outputs(&doc, task);
        assert_eq!(outputs.len(), 3000, "task {task}");
        for (x, output) in outputs.iter().enumerate() {
            assert_eq!(output, &expected(x as u64), "task {task}, item {x}");
        }
    }
}

/// `max_items_per_worker` counts items for Python workers too, though a `range` goes to them
/// in runs: no worker runs more, and every item runs once.
#[test]
fn max_items_per_worker_counts_the_items_of_python_range_batches() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "import os\ndef f(x):\n    return [x, os.getpid()]\n",
    );
    let (code, doc, err) = run_in(
        dir.path(),
        "workers = 2\n[functions.f]\npython = \"fns.py:f\"\nmax_items_per_worker = 70\n\
         [[task]]\nfunction = \"f\"\ninputs = { range = [0, 1000] }\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let mut per_worker = std::collections::HashMap::new();
    for (x, output) in outputs(&doc, 0).iter().enumerate() {
        assert_eq!(output[0], x as u64, "{output}");
        *per_worker.entry(output[1].as_u64().unwrap()).or_insert(0) += 1;
    }
    assert!(per_worker.values().all(|&n| n <= 70), "{per_worker:?}");
    assert!(per_worker.len() > 1000 / 70, "{per_worker:?}");
}

/// A worker ends as a multiprocessing worker does, without tearing its interpreter down:
/// what the function's module registered with `atexit` still runs, in every worker, and
/// what it prints still reaches the log.
#[test]
fn a_python_workers_atexit_functions_run_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "import atexit, os\n\
         def bye():\n\
         \x20   with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bye-%d' % os.getpid()), 'w') as f:\n\
         \x20       f.write('bye')\n\
         \x20   print('goodbye from', os.getpid())\n\
         atexit.register(bye)\n\
         def f(x):\n    return os.getpid()\n",
    );
    let (code, doc, err) = run_in(
        dir.path(),
        "workers = 2\n[functions.f]\npython = \"fns.py:f\"\n\
         [[task]]\nfunction = \"f\"\ninputs = { range = [0, 2000] }\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let pids: HashSet<u64> = outputs(&doc, 0)
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(!pids.is_empty());
    for pid in pids {
        let bye = std::fs::read_to_string(dir.path().join(format!("bye-{pid}")));
        assert_eq!(bye.ok().as_deref(), Some("bye"), "worker {pid}: {err}");
        assert!(err.contains(&format!("goodbye from {pid}")), "{err}");
    }
}

/// Task `task`'s records in the results file `out`, written in `format`, in index order.
fn task_records(out: &Path, format: &str, task: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(out).unwrap();
    let doc = match format {
        "jsonl" => {
            let mut records: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["record"] == "item" && v["task"] == format!("t{task}"))
                .collect();
            records.sort_by_key(|r| r["index"].as_u64());
            return records;
        }
        "toml" => serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()).unwrap(),
        _ => serde_json::from_str(&text).unwrap(),
    };
    results(&doc, task).clone()
}

#[test]
fn a_python_exception_fails_its_item_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "def check(n):\n    if n == 3:\n        raise ValueError('three is bad')\n    print('checked', n)\n    return n * 10\n",
    );
    let (code, doc, err) = run_in(
        dir.path(),
        "workers = 2\n[functions.check]\npython = \"fns.py:check\"\n[[task]]\nfunction = \"check\"\ninputs = [1, 2, 3, 4]\n",
    );
    assert_eq!(code, Some(1), "{err}");
    let r = results(&doc, 0);
    assert_eq!(outputs(&doc, 0)[0], json!(10));
    assert_eq!(outputs(&doc, 0)[3], json!(40));
    let error = r[2]["error"].as_str().unwrap();
    assert!(error.contains("ValueError: three is bad"), "{error}");
    assert!(
        error.contains("fns.py"),
        "the traceback names the file: {error}"
    );
    // print() inside the function goes to the log, not into the protocol.
    assert!(err.contains("checked 1"), "{err}");
}

#[test]
fn python_exe_selects_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "import sys\ndef which(_):\n    return sys.executable\n",
    );
    // A wrapper standing in for a virtualenv's interpreter: it marks that it ran.
    let wrapper = write(
        dir.path(),
        "venv/bin/python",
        "#!/bin/sh\nexport VIA_WRAPPER=yes\nexec python3 \"$@\"\n",
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(
        dir.path(),
        "env.py",
        "import os\ndef via(_):\n    return os.environ.get('VIA_WRAPPER')\n",
    );
    let (code, doc, err) = run_in(
        dir.path(),
        "[functions.via]\npython = \"env.py:via\"\npython_exe = \"venv/bin/python\"\n[[task]]\nfunction = \"via\"\ninputs = [1]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(outputs(&doc, 0), [json!("yes")]);
}

/// The Python worker's answers for fast items reach runjobs while a later item hangs, so the
/// timeout lands on the hanging item (regression: answers waited for the end of a batch).
#[test]
fn python_timeout_blames_the_hanging_item() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "import time\ndef nap(s):\n    time.sleep(s)\n    return s\n",
    );
    let mut inputs = vec!["0"; 40];
    inputs.push("30");
    inputs.extend(["0"; 3]);
    let (code, doc, err) = run_in(
        dir.path(),
        &format!(
            "workers = 1\ntimeout = \"500ms\"\nkill_grace = \"100ms\"\n[functions.nap]\npython = \"fns.py:nap\"\n\
             [[task]]\nfunction = \"nap\"\ninputs = [{}]\n",
            inputs.join(", ")
        ),
    );
    assert_eq!(code, Some(1), "{err}");
    let failed: Vec<u64> = results(&doc, 0)
        .iter()
        .filter(|r| r["status"] != "ok")
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [40]);
    assert_eq!(results(&doc, 0)[40]["status"], "timed_out");
}

/// A worker that says `batch = true` gets several items a line and answers a line a batch;
/// it records how many items each request line held.
const BATCH_WORKER: &str = r#"import json, sys
log = open("lines.log", "a")
for line in sys.stdin:
    request = json.loads(line)
    inputs = request["inputs"]
    ids = request["ids"] if "ids" in request else [request["first"] + n for n in range(len(inputs))]
    log.write(f"{len(inputs)}\n")
    log.flush()
    outputs = [x * 3 if x != 13 else None for x in inputs]
    errors = ["unlucky" if x == 13 else None for x in inputs]
    print(json.dumps({"ids": ids, "outputs": outputs, "errors": errors}), flush=True)
"#;

#[test]
fn a_worker_with_batch_true_takes_several_items_a_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "batch.py", BATCH_WORKER);
    let inputs: Vec<i64> = (0..3000).collect();
    let (code, doc, err) = run_in(
        dir.path(),
        &format!(
            "[functions.w]\nworker = [\"python3\", \"batch.py\"]\nbatch = true\n\
             [[task]]\nfunction = \"w\"\nworkers = 1\ninputs = {inputs:?}\n"
        ),
    );
    assert_eq!(code, Some(1), "{err}");
    let r = results(&doc, 0);
    assert_eq!(r.len(), 3000);
    for (result, x) in r.iter().zip(&inputs) {
        if *x == 13 {
            assert_eq!(result["status"], "failed", "{result}");
            assert_eq!(result["error"], "unlucky");
        } else {
            assert_eq!(result["output"], x * 3, "{result}");
        }
    }
    let lines = std::fs::read_to_string(dir.path().join("lines.log")).unwrap();
    let sizes: Vec<usize> = lines.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 3000);
    assert!(
        sizes.len() < 3000 && sizes.iter().any(|n| *n > 1),
        "{sizes:?}"
    );

    // On any other kind of function, `batch` is a mistake named at its line.
    let bad = write(
        dir.path(),
        "bad.toml",
        "[functions.c]\ncommand = [\"echo\"]\nbatch = true\n[[task]]\nfunction = \"c\"\ninputs = [1]\n",
    );
    let output = runjobs().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains("bad.toml:3") && said.contains("`batch` only applies to `worker`"),
        "{said}"
    );
}

/// runjobs installed into a virtual environment (its binary in the venv's `bin/`, as `pip
/// install` puts it) runs Python functions with that environment's interpreter when
/// `python_exe` is not set: a package only the venv has imports, from a cron-like line that
/// never activated it. The same binary elsewhere uses `python3` from PATH.
#[test]
fn runjobs_in_a_venv_runs_python_functions_with_the_venvs_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    // A package installed only there.
    let purelib = std::process::Command::new(venv.join("bin/python3"))
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let purelib = String::from_utf8(purelib.stdout).unwrap();
    write(
        Path::new(purelib.trim()),
        "only_in_venv.py",
        "def triple(x):\n    return 3 * x\n",
    );
    std::fs::copy(BIN, venv.join("bin/runjobs")).unwrap();
    write(
        dir.path(),
        "fns.py",
        "import sys\nfrom only_in_venv import triple\ndef f(x):\n    return [triple(x), sys.prefix]\n",
    );
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.f]\npython = \"fns.py:f\"\n[[task]]\nfunction = \"f\"\ninputs = [1, 2]\n",
    );
    let out = dir.path().join("out.json");
    // As cron would: an absolute path, a PATH without the venv, nothing activated.
    let run = std::process::Command::new(venv.join("bin/runjobs"))
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc = read_json(&out);
    let outputs = outputs(&doc, 0);
    assert_eq!(outputs[1][0], 6);
    let prefix = std::fs::canonicalize(&venv).unwrap();
    let used = std::fs::canonicalize(outputs[0][1].as_str().unwrap()).unwrap();
    assert_eq!(used, prefix);
    // Found through PATH too, as after `source venv/bin/activate`.
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        venv.join("bin").display()
    );
    let run = std::process::Command::new("runjobs")
        .arg(&job)
        .args(["-q", "-o"])
        .arg(&out)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    // The binary outside the venv: python3 from PATH, which lacks the package.
    let outside = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(outside.status.code(), Some(1));
    assert!(read_json(&out).to_string().contains("only_in_venv"));
}
