//! Output formats, written atomically, with the keys of SPEC §4.

use serde_json::{Value, json};

use crate::util::*;

const JOB: &str = "[[task]]\nfunction = \"square\"\nworkers = 2\ninputs = [1, 2, \"x\", 4]\n";

#[test]
fn json_has_every_key_of_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", JOB);
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc = read_json(&out);
    for key in [
        "job",
        "job_file",
        "status",
        "started_at",
        "finished_at",
        "duration_s",
        "summary",
        "tasks",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    assert_eq!(doc["job"], "job");
    let task = &doc["tasks"][0];
    assert_eq!(task["name"], "square");
    assert_eq!(task["function"], "builtin:square");
    assert_eq!(task["workers"], 2);
    let ok = &task["results"][0];
    for key in [
        "index",
        "input",
        "status",
        "output",
        "attempts",
        "started_s",
        "duration_s",
        "worker",
    ] {
        assert!(ok.get(key).is_some(), "result misses {key}: {ok}");
    }
    let failed = &task["results"][2];
    assert_eq!(failed["status"], "failed");
    assert!(failed.get("output").is_none());
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("square expects a number")
    );
}

#[test]
fn toml_has_the_same_tree_without_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", JOB);
    let out = dir.path().join("r.toml");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["status"].as_str(), Some("failed"));
    let results = doc["tasks"][0]["results"].as_array().unwrap();
    let outputs: Vec<_> = results
        .iter()
        .map(|r| r.get("output").and_then(|o| o.as_integer()))
        .collect();
    assert_eq!(outputs, [Some(1), Some(4), None, Some(16)]);
    assert_eq!(doc["summary"]["failed"].as_integer(), Some(1));
}

#[test]
fn jsonl_has_a_line_per_item_then_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(dir.path(), "job.toml", JOB);
    let out = dir.path().join("r.jsonl");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let mut by_index: Vec<_> = lines[..4]
        .iter()
        .map(|l| (l["index"].as_u64().unwrap(), l.clone()))
        .collect();
    by_index.sort_by_key(|(i, _)| *i);
    assert!(lines[..4].iter().all(|l| l["task"] == "square"));
    assert_eq!(by_index[1].1["output"], 4);
    let last = &lines[4];
    assert_eq!(last["status"], "failed");
    assert_eq!(
        last["summary"],
        json!({"total": 4, "ok": 3, "failed": 1, "timed_out": 0, "skipped": 0})
    );
}

#[test]
fn format_flag_and_output_table_choose_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[output]\npath = \"res.data\"\nformat = \"jsonl\"\n[[task]]\nfunction = \"double\"\ninputs = [1]\n",
    );
    runjobs().arg(&job).assert().code(0);
    let text = std::fs::read_to_string(dir.path().join("res.data")).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let out = dir.path().join("forced.txt");
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .args(["--format", "toml"])
        .assert()
        .code(0);
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["status"].as_str(), Some("ok"));
}

#[test]
fn dash_writes_results_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"cube\"\ninputs = [2]\n",
    );
    let output = runjobs().arg(&job).args(["-o", "-"]).output().unwrap();
    assert!(output.status.success());
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outputs(&doc, 0), [json!(8)]);
}

#[test]
fn no_temporary_file_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"cube\"\ninputs = { range = [0, 1000] }\n",
    );
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(dir.path().join("out/r.json"))
        .assert()
        .code(0);
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The results, the overlap locks' files (the job's, the output's) and the run index; no
    // temporary file.
    assert_eq!(
        names,
        [
            ".job.runjobs.lock",
            ".r.json.output.lock",
            "job.history.jsonl",
            "r.json"
        ]
    );
}

#[test]
fn unknown_output_extension_without_format_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"cube\"\ninputs = [2]\n",
    );
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(dir.path().join("r.yaml"))
        .assert()
        .code(2);
    assert!(!dir.path().join("r.yaml").exists());
}

/// Builtin workers append their records to the journal and runjobs copies them into the
/// results; without a journal they come through the pipe. Both give the same results, in
/// every format, errors and a pipeline included.
#[test]
fn results_are_the_same_whether_workers_journal_their_records_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 3\n\
         [[task]]\nname = \"sq\"\nfunction = \"square\"\ninputs = { range = [0, 3000] }\n\
         [[task]]\nname = \"twice\"\nfunction = \"double\"\ninputs = { from = \"sq\" }\n\
         [[task]]\nname = \"odd\"\nfunction = \"fib\"\ninputs = [5, -1, 7, \"x\", 100, 9]\n",
    );
    // Timings, pids and resource figures (measured or not, as the items came) differ from
    // run to run; everything else must not.
    let comparable = |mut record: Value| {
        let object = record.as_object_mut().unwrap();
        for key in ["started_s", "duration_s", "worker", "cpu_s", "max_rss_kib"] {
            object.remove(key);
        }
        record
    };
    let run = |name: &str, journal: bool| -> Vec<Vec<Value>> {
        let out = dir.path().join(name);
        let mut cmd = runjobs();
        cmd.arg(&job).arg("-o").arg(&out).arg("--progress=never");
        if !journal {
            cmd.arg("--no-journal");
        }
        cmd.assert().code(1);
        assert!(!dir.path().join(format!("{name}.journal")).exists());
        let text = std::fs::read_to_string(&out).unwrap();
        let mut tasks: Vec<Vec<Value>> = vec![Vec::new(); 3];
        let names = ["sq", "twice", "odd"];
        if name.ends_with(".jsonl") {
            for line in text.lines() {
                let mut record: Value = serde_json::from_str(line).unwrap();
                if let Some(task) = record.as_object_mut().unwrap().remove("task") {
                    let at = names.iter().position(|n| task == *n).unwrap();
                    tasks[at].push(comparable(record));
                }
            }
            for results in &mut tasks {
                results.sort_by_key(|r| r["index"].as_u64());
            }
        } else {
            let doc: Value = if name.ends_with(".toml") {
                let table: toml::Table = toml::from_str(&text).unwrap();
                serde_json::to_value(table).unwrap()
            } else {
                serde_json::from_str(&text).unwrap()
            };
            for (at, results) in tasks.iter_mut().enumerate() {
                *results = doc["tasks"][at]["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned()
                    .map(comparable)
                    .collect();
            }
        }
        tasks
    };
    for ext in ["json", "jsonl", "toml"] {
        let journaled = run(&format!("a.{ext}"), true);
        let piped = run(&format!("b.{ext}"), false);
        assert_eq!(journaled[0].len(), 3000, "{ext}");
        assert_eq!(journaled[1].len(), 3000, "{ext}");
        assert_eq!(journaled[0][2999]["output"], 2999 * 2999, "{ext}");
        assert_eq!(journaled[1][10]["output"], 200, "{ext}");
        let statuses: Vec<&str> = journaled[2]
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["ok", "failed", "ok", "failed", "failed", "ok"],
            "{ext}"
        );
        assert!(journaled == piped, "{ext}: the two runs differ");
    }
}

#[test]
fn job_file_is_recorded_absolute_whatever_folder_runjobs_started_in() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("jobs"), "j.toml", JOB);
    let out = dir.path().join("r.json");
    runjobs()
        .current_dir(dir.path())
        .args(["jobs/./j.toml", "-o", "r.json"])
        .assert()
        .code(1);
    let doc = read_json(&out);
    let recorded = std::path::PathBuf::from(doc["job_file"].as_str().unwrap());
    assert!(recorded.is_absolute(), "{recorded:?}");
    assert_eq!(
        recorded.canonicalize().unwrap(),
        dir.path().join("jobs/j.toml").canonicalize().unwrap()
    );
    assert!(!recorded.to_string_lossy().contains("/./"), "{recorded:?}");
}

#[test]
fn toml_is_streamed_in_bounded_memory_one_result_a_line_in_input_order() {
    let n = 400_000;
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!("workers = 2\n[[task]]\nfunction = \"square\"\ninputs = {{ range = [0, {n}] }}\n"),
    );
    let out = dir.path().join("r.toml");
    let (code, peak_kib) =
        run_measuring_peak_rss(&[job.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(code, Some(0));
    // Built in memory, this took about 1.1 GB; streamed, about 20 MiB.
    assert!(peak_kib < 64 * 1024, "runjobs peaked at {peak_kib} KiB");
    let text = std::fs::read_to_string(&out).unwrap();
    let records: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("{ index = "))
        .collect();
    assert_eq!(records.len(), n);
    for (i, line) in records.iter().enumerate().step_by(997) {
        let square = (i * i).to_string();
        assert!(
            line.starts_with(&format!(
                "{{ index = {i}, input = {i}, status = \"ok\", output = {square},"
            )),
            "{line}"
        );
    }
    assert!(
        text.starts_with("version = 1\njob = \"job\"\n"),
        "{}",
        &text[..200]
    );
    assert!(text.contains("\nstatus = \"ok\"\n"));
}

/// What `schemas/results.schema.json` (or its `$defs/DEF`) finds wrong with `doc`.
fn schema_errors(def: Option<&str>, doc: &Value) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("schemas/results.schema.json")).unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    if let Some(def) = def {
        schema["$ref"] = Value::from(format!("#/$defs/{def}"));
        schema.as_object_mut().unwrap().remove("required");
        schema.as_object_mut().unwrap().remove("properties");
    }
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator.iter_errors(doc).map(|e| e.to_string()).collect()
}

/// The results of `job` in `format`, as JSON (TOML read back, JSON Lines item lines gathered
/// into the one task's `results`), and each file checked against the results-file schema.
fn results_as_json(job: &std::path::Path, format: &str) -> Value {
    let out = job.with_file_name(format!("r.{format}"));
    let output = runjobs().arg(job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&out).unwrap();
    let check = |def: Option<&str>, doc: &Value| {
        let errors = schema_errors(def, doc);
        assert!(errors.is_empty(), "{format}: {errors:?}");
    };
    match format {
        "jsonl" => {
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let (run, items) = lines.split_last().unwrap();
            check(Some("jsonl_run"), run);
            items
                .iter()
                .for_each(|item| check(Some("jsonl_item"), item));
            let mut items = items.to_vec();
            items.sort_by_key(|item| item["index"].as_u64());
            let mut doc = run.clone();
            doc["tasks"] = json!([{ "results": items, "summary": run["summary"] }]);
            doc
        }
        "toml" => {
            let table: toml::Table = toml::from_str(&text).unwrap();
            let doc = serde_json::to_value(table).unwrap();
            check(None, &doc);
            doc
        }
        _ => {
            let doc: Value = serde_json::from_str(&text).unwrap();
            check(None, &doc);
            doc
        }
    }
}

#[test]
fn a_capped_output_is_marked_truncated_in_every_format_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 5 MB, then 10 bytes, of `x` on stdout.
    let job = write(
        dir.path(),
        "big.toml",
        "[functions.big]\n\
         command = [\"sh\", \"-c\", \"head -c $1 /dev/zero | tr '\\\\0' x\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"big\"\ninputs = [5000000, 10]\n",
    );
    for format in ["json", "toml", "jsonl"] {
        let doc = results_as_json(&job, format);
        let results = results(&doc, 0);
        let dropped = 5_000_000 - (1 << 20);
        assert_eq!(
            results[0]["truncated"],
            json!({ "stdout": dropped }),
            "{format}"
        );
        let text = results[0]["output"].as_str().unwrap();
        assert!(
            text.ends_with(&format!("…[truncated: {dropped} more bytes]")),
            "{format}"
        );
        assert_eq!(results[1]["output"], "x".repeat(10), "{format}");
        assert!(results[1].get("truncated").is_none(), "{format}");
        assert_eq!(doc["summary"]["truncated"], 1, "{format}");
        assert_eq!(doc["tasks"][0]["summary"]["truncated"], 1, "{format}");
    }
    let report = runjobs()
        .args(["report", "--json"])
        .arg(dir.path().join("r.jsonl"))
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["summary"]["truncated"], 1);
    assert_eq!(report["tasks"][0]["summary"]["truncated"], 1);
    assert_eq!(report["truncated"][0]["index"], 0);
    assert_eq!(
        report["truncated"][0]["truncated"]["stdout"],
        5_000_000 - (1 << 20)
    );
    let shown = runjobs()
        .arg("report")
        .arg(dir.path().join("r.json"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("1 truncated"), "{shown}");
    assert!(shown.contains("big[0] (input 5000000)"), "{shown}");
    assert!(
        shown.contains("stdout cut at the cap, 3951424 bytes dropped"),
        "{shown}"
    );

    let page = dir.path().join("r.html");
    let html = runjobs()
        .arg("report")
        .arg(dir.path().join("r.toml"))
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(html.status.code(), Some(0), "{}", stderr(&html));
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(page.contains("<h2>Truncated outputs</h2>"), "{page}");
    assert!(page.contains("stdout cut at the cap, 3951424 bytes dropped"));
    assert!(page.contains("1 truncated"));

    // The schema knows the key: a stream it does not know, or nothing dropped, is wrong.
    let mut item = results(&read_json(&dir.path().join("r.json")), 0)[0].clone();
    assert!(schema_errors(Some("result"), &item).is_empty());
    item["truncated"] = json!({ "stdout": 0 });
    assert!(!schema_errors(Some("result"), &item).is_empty());
    item["truncated"] = json!({ "stdin": 5 });
    assert!(!schema_errors(Some("result"), &item).is_empty());

    // `max_output` raises the cap: nothing is cut, and no `truncated` is written.
    let raised = std::fs::read_to_string(&job).unwrap().replace(
        "[functions.big]\n",
        "[functions.big]\nmax_output = \"8MiB\"\n",
    );
    std::fs::write(&job, raised).unwrap();
    let doc = results_as_json(&job, "json");
    let results = results(&doc, 0);
    assert_eq!(results[0]["output"].as_str().unwrap().len(), 5_000_000);
    assert!(results[0].get("truncated").is_none());
    assert!(doc["summary"].get("truncated").is_none());
}

#[test]
fn a_failed_command_keeps_what_it_printed_and_an_ok_one_only_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        r#"workers = 1
[functions.f]
command = ["sh", "-c", 'echo "said $1"; echo "moaned $1" >&2; test "$1" = ok', "sh", "{input}"]
[functions.quiet]
command = ["sh", "-c", 'echo "said $1"; exit 1', "sh", "{input}"]
stdout = "ignore"
[functions.j]
command = ["echo", "not json"]
stdout = "json"
[[task]]
function = "f"
inputs = ["ok", "bad"]
[[task]]
function = "quiet"
inputs = ["x"]
[[task]]
function = "j"
inputs = [1]
"#,
    );
    for format in ["json", "jsonl", "toml"] {
        let out = dir.path().join(format!("r.{format}"));
        runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
        let records: Vec<Value> = match format {
            "json" => {
                let doc = read_json(&out);
                (0..3).flat_map(|t| results(&doc, t).clone()).collect()
            }
            "jsonl" => std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["record"] == "item")
                .collect(),
            _ => {
                let text = std::fs::read_to_string(&out).unwrap();
                let doc: toml::Table = toml::from_str(&text).unwrap();
                let doc = serde_json::to_value(doc).unwrap();
                (0..3).flat_map(|t| results(&doc, t).clone()).collect()
            }
        };
        let (ok, bad, quiet, not_json) = (&records[0], &records[1], &records[2], &records[3]);
        assert_eq!(ok["output"], "said ok", "{format}: {ok}");
        assert!(
            ok.get("stdout").is_none() && ok.get("stderr").is_none(),
            "{ok}"
        );
        assert_eq!(bad["status"], "failed", "{format}: {bad}");
        assert_eq!(bad["stdout"], "said bad", "{format}: {bad}");
        assert_eq!(bad["stderr"], "moaned bad", "{format}: {bad}");
        assert!(quiet.get("stdout").is_none(), "ignored stdout: {quiet}");
        assert_eq!(not_json["stdout"], "not json", "{format}: {not_json}");
    }
}
