//! Every input form of SPEC §2, through the real binary.

use serde_json::{Value, json};

use crate::util::*;

/// Runs `job` (written into a fresh folder with `files`) and returns the results document.
fn run_job(job: &str, files: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        write(dir.path(), name, body);
    }
    let path = write(dir.path(), "job.toml", job);
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&path).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    read_json(&out)
}

fn inputs(doc: &Value, task: usize) -> Vec<Value> {
    results(doc, task)
        .iter()
        .map(|r| r["input"].clone())
        .collect()
}

#[test]
fn inline_array_of_mixed_values() {
    let doc = run_job(
        "[[task]]\nfunction = \"identity\"\ninputs = [1, 2.5, \"s\", true, [1, 2], { a = 1 }]\n",
        &[],
    );
    let expected = vec![
        json!(1),
        json!(2.5),
        json!("s"),
        json!(true),
        json!([1, 2]),
        json!({"a": 1}),
    ];
    assert_eq!(outputs(&doc, 0), expected);
    assert_eq!(inputs(&doc, 0), expected);
}

#[test]
fn range_with_and_without_step() {
    let doc = run_job(
        "[[task]]\nname = \"a\"\nfunction = \"identity\"\ninputs = { range = [1, 5] }\n\
         [[task]]\nname = \"b\"\nfunction = \"identity\"\ninputs = { range = [10, 0, -3] }\n",
        &[],
    );
    assert_eq!(outputs(&doc, 0), [json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(outputs(&doc, 1), [json!(10), json!(7), json!(4), json!(1)]);
}

#[test]
fn lines_skip_blank_lines() {
    let doc = run_job(
        "[[task]]\nfunction = \"upper\"\ninputs = { lines = \"data/words.txt\" }\n",
        &[("data/words.txt", "alpha\n\nbeta\n  \ngamma")],
    );
    assert_eq!(
        outputs(&doc, 0),
        [json!("ALPHA"), json!("BETA"), json!("GAMMA")]
    );
}

#[test]
fn json_jsonl_and_csv_files() {
    let doc = run_job(
        "[[task]]\nname = \"j\"\nfunction = \"sum\"\ninputs = { file = \"a.json\" }\n\
         [[task]]\nname = \"l\"\nfunction = \"double\"\ninputs = { file = \"b.jsonl\" }\n\
         [[task]]\nname = \"c\"\nfunction = \"identity\"\ninputs = { file = \"c.csv\" }\n",
        &[
            ("a.json", "[[1, 2], [3, 4, 5]]"),
            ("b.jsonl", "1\n2\n\n3\n"),
            ("c.csv", "name,size\nx,1\ny,2\n"),
        ],
    );
    assert_eq!(outputs(&doc, 0), [json!(3), json!(12)]);
    assert_eq!(outputs(&doc, 1), [json!(2), json!(4), json!(6)]);
    assert_eq!(
        outputs(&doc, 2),
        [
            json!({"name": "x", "size": "1"}),
            json!({"name": "y", "size": "2"})
        ]
    );
}

#[test]
fn glob_matches_sorted_paths_relative_to_the_job_folder() {
    let doc = run_job(
        "[[task]]\nfunction = \"line_count\"\ninputs = { glob = \"data/**/*.txt\" }\n",
        &[
            ("data/b.txt", "1\n2\n"),
            ("data/a.txt", "1\n"),
            ("data/sub/c.txt", "1\n2\n3\n"),
            ("data/skip.csv", ""),
        ],
    );
    assert_eq!(
        inputs(&doc, 0),
        [
            json!("data/a.txt"),
            json!("data/b.txt"),
            json!("data/sub/c.txt")
        ]
    );
    assert_eq!(outputs(&doc, 0), [json!(1), json!(2), json!(3)]);
}

#[test]
fn matrix_is_the_cartesian_product_in_declaration_order() {
    let doc = run_job(
        "[[task]]\nfunction = \"identity\"\ninputs = { matrix = { x = [1, 2], lr = [0.1, 0.01] } }\n",
        &[],
    );
    assert_eq!(
        outputs(&doc, 0),
        [
            json!({"x": 1, "lr": 0.1}),
            json!({"x": 1, "lr": 0.01}),
            json!({"x": 2, "lr": 0.1}),
            json!({"x": 2, "lr": 0.01}),
        ]
    );
}

#[test]
fn from_feeds_the_ok_outputs_of_an_earlier_task() {
    let doc = run_job(
        "[[task]]\nname = \"squares\"\nfunction = \"square\"\ninputs = [1, 2, 3]\n\
         [[task]]\nname = \"doubled\"\nfunction = \"double\"\ninputs = { from = \"squares\" }\n",
        &[],
    );
    assert_eq!(outputs(&doc, 1), [json!(2), json!(8), json!(18)]);
    assert_eq!(inputs(&doc, 1), [json!(1), json!(4), json!(9)]);
}

#[test]
fn two_tasks_can_feed_on_the_same_task() {
    let doc = run_job(
        "[[task]]\nname = \"base\"\nfunction = \"identity\"\ninputs = [2, 3]\n\
         [[task]]\nname = \"sq\"\nfunction = \"square\"\ninputs = { from = \"base\" }\n\
         [[task]]\nname = \"neg\"\nfunction = \"negate\"\ninputs = { from = \"base\" }\n",
        &[],
    );
    assert_eq!(outputs(&doc, 1), [json!(4), json!(9)]);
    assert_eq!(outputs(&doc, 2), [json!(-2), json!(-3)]);
}

#[test]
fn results_keep_input_order_when_items_finish_out_of_order() {
    let doc = run_job(
        "workers = 4\n[[task]]\nfunction = \"sleep\"\ninputs = [0.4, 0.0, 0.2, 0.0, 0.1, 0.0]\n",
        &[],
    );
    let results = results(&doc, 0);
    let indices: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        inputs(&doc, 0),
        [
            json!(0.4),
            json!(0.0),
            json!(0.2),
            json!(0.0),
            json!(0.1),
            json!(0.0)
        ]
    );
    // The first item really did finish after the second one started.
    let end0 =
        results[0]["started_s"].as_f64().unwrap() + results[0]["duration_s"].as_f64().unwrap();
    assert!(
        end0 > results[1]["started_s"].as_f64().unwrap(),
        "{results:?}"
    );
}

#[test]
fn a_bad_jsonl_line_fails_its_item_naming_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.jsonl", "1\n{x: 2}\n3\n");
    let job = write(
        dir.path(),
        "job.toml",
        "[[task]]\nfunction = \"double\"\ninputs = { file = \"b.jsonl\" }\n",
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let doc = read_json(&out);
    let r = results(&doc, 0);
    assert_eq!(
        (r[0]["output"].clone(), r[2]["output"].clone()),
        (json!(2), json!(6))
    );
    let error = r[1]["error"].as_str().unwrap();
    assert!(
        error.contains("b.jsonl` line 2, column 2: not valid JSON (key must be a string)"),
        "{error}"
    );
    assert!(!error.contains("line 1"), "{error}");
}

#[test]
fn globs_yield_files_that_cannot_pass_for_options_and_an_empty_one_is_a_note() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "-rf", "abc");
    write(dir.path(), "b.txt", "hello");
    write(dir.path(), "sub/c.txt", "x");
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.count]\ncommand = [\"wc\", \"-c\", \"{input}\"]\n\
         [[task]]\nfunction = \"count\"\ninputs = { glob = \"*\" }\n\
         [[task]]\nname = \"folders\"\nfunction = \"identity\"\ninputs = { glob = \"*/\" }\n",
    );
    let out = dir.path().join("res/out.json");
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&out);
    // Files only (not `sub`, nor the job file's folder entries that are folders).
    assert_eq!(
        inputs(&doc, 0),
        [json!("./-rf"), json!("b.txt"), json!("job.toml")]
    );
    assert_eq!(
        outputs(&doc, 0)[0],
        json!("3 ./-rf"),
        "wc read the file, not a flag"
    );
    // The path placeholders of such a file cannot pass for an option either.
    let names = write(
        dir.path(),
        "names.toml",
        "[functions.name]\ncommand = [\"echo\", \"{input.name}\", \"{input.stem}\"]\n\
         [[task]]\nfunction = \"name\"\ninputs = [\"./-rf\", \"data/b.txt\"]\n",
    );
    let output = runjobs().arg(&names).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        outputs(&read_json(&out), 0),
        [json!("./-rf ./-rf"), json!("b.txt b")]
    );
    assert_eq!(
        inputs(&doc, 1),
        [json!("res"), json!("sub")],
        "folders: a pattern ending in /"
    );

    let empty = write(
        dir.path(),
        "empty.toml",
        "[[task]]\nfunction = \"line_count\"\ninputs = { glob = \"nothing/*.csv\" }\n",
    );
    let output = runjobs().arg(&empty).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("matches nothing"),
        "{}",
        stderr(&output)
    );
    let output = runjobs()
        .arg(&empty)
        .arg("-o")
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}
