//! Runs over time (SPEC §8): results whose identity follows the files they name, `--reuse`,
//! and `[output] reuse = "latest"`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::*;

/// Sets a file's modification time `seconds` from now: edits in a test follow each other
/// faster than some file systems' clocks tick, so every state gets a time of its own.
fn set_mtime(path: &Path, seconds: i64) {
    let now = SystemTime::now();
    let at = if seconds >= 0 {
        now + Duration::from_secs(seconds as u64)
    } else {
        now - Duration::from_secs(seconds.unsigned_abs())
    };
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// The inputs the function was called with (each call appends its input to `calls.txt`).
fn calls(dir: &Path) -> BTreeSet<String> {
    let calls = std::fs::read_to_string(dir.join("calls.txt")).unwrap_or_default();
    let _ = std::fs::remove_file(dir.join("calls.txt"));
    calls.lines().map(str::to_owned).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A command that logs its input, then prints the size of the file it names.
const SIZE_COMMAND: &str =
    r#"command = ["sh", "-c", "echo \"$1\" >> calls.txt; wc -c < \"$1\"", "sh", "{input}"]"#;

/// The result of each input, by input.
fn by_input(doc: &Value, task: usize) -> std::collections::BTreeMap<String, Value> {
    results(doc, task)
        .iter()
        .map(|r| (r["input"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// Six files, then each changed in its own way: `a` edited (other bytes, same size), `b`
/// touched (same bytes, a new time), `c` grown, `d` shrunk, `e` deleted, `f` left alone.
fn change_the_files(dir: &Path) {
    std::fs::write(dir.join("a.txt"), "AAAA").unwrap();
    set_mtime(&dir.join("a.txt"), -50);
    set_mtime(&dir.join("b.txt"), -50);
    std::fs::write(dir.join("c.txt"), "cccccccc").unwrap();
    std::fs::write(dir.join("d.txt"), "d").unwrap();
    std::fs::remove_file(dir.join("e.txt")).unwrap();
}

fn six_files(dir: &Path) {
    for name in ["a", "b", "c", "d", "e", "f"] {
        let path = write(dir, &format!("{name}.txt"), &name.repeat(4));
        set_mtime(&path, -100);
    }
}

#[test]
fn each_fingerprint_reruns_exactly_the_items_whose_files_changed() {
    let expected = [
        ("mtime", set(&["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"])),
        ("content", set(&["a.txt", "c.txt", "d.txt", "e.txt"])),
        // The name alone: nothing reruns, as before fingerprints.
        ("path", set(&[])),
    ];
    for (mode, rerun) in expected {
        for via in ["--resume", "--reuse"] {
            let dir = tempfile::tempdir().unwrap();
            six_files(dir.path());
            let job = write(
                dir.path(),
                "sizes.toml",
                &format!(
                    "[functions.size]\n{SIZE_COMMAND}\ninput = \"path\"\nfingerprint = \"{mode}\"\n\
                     [[task]]\nfunction = \"size\"\n\
                     inputs = [\"a.txt\", \"b.txt\", \"c.txt\", \"d.txt\", \"e.txt\", \"f.txt\"]\n"
                ),
            );
            let first = dir.path().join("out/first.json");
            runjobs().arg(&job).arg("-o").arg(&first).assert().code(0);
            assert_eq!(calls(dir.path()).len(), 6);
            let first_bytes = std::fs::read(&first).unwrap();
            change_the_files(dir.path());
            let second = match via {
                "--resume" => first.clone(),
                _ => dir.path().join("out/second.json"),
            };
            let run = runjobs()
                .arg(&job)
                .arg("-o")
                .arg(&second)
                .arg(via)
                .arg(&first)
                .output()
                .unwrap();
            let context = format!("{mode} {via}: {}", stderr(&run));
            assert_eq!(calls(dir.path()), rerun, "{context}");
            if via == "--reuse" {
                assert_eq!(std::fs::read(&first).unwrap(), first_bytes, "{context}");
            }
            let doc = read_json(&second);
            let results = by_input(&doc, 0);
            for (input, r) in &results {
                let reused = r["reused_from"].is_string();
                assert_eq!(reused, !rerun.contains(input), "{input}: {context}");
                if mode == "path" || input != "e.txt" {
                    assert_eq!(r["status"], "ok", "{input}: {context}");
                } else {
                    // A file that vanished is a failed item.
                    assert_eq!(r["status"], "failed", "{input}: {context}");
                }
                if mode != "path" && r["status"] == "ok" {
                    let size = std::fs::metadata(dir.path().join(input)).unwrap().len();
                    assert_eq!(r["output"], size.to_string(), "{input}: {context}");
                    let prefix = if mode == "mtime" { "mtime:" } else { "sha256:" };
                    assert!(
                        r["fingerprint"].as_str().unwrap().starts_with(prefix),
                        "{r}"
                    );
                }
                if mode == "path" {
                    assert!(r["fingerprint"].is_null(), "{r}");
                }
            }
            let code = if mode == "path" { 0 } else { 1 };
            assert_eq!(run.status.code(), Some(code), "{context}");
        }
    }
}

#[test]
fn a_command_and_a_builtin_over_a_glob_rerun_only_the_edited_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["one", "two", "three"] {
        let path = write(dir.path(), &format!("data/{name}.txt"), name);
        set_mtime(&path, -100);
    }
    let job = write(
        dir.path(),
        "c.toml",
        &format!(
            "[functions.size]\n{SIZE_COMMAND}\n\
             [[task]]\nfunction = \"size\"\ninputs = {{ glob = \"data/*.txt\" }}\n\
             [[task]]\nfunction = \"sha256_file\"\ninputs = {{ glob = \"data/*.txt\" }}\n\
             [output]\npath = \"out/c.json\"\n"
        ),
    );
    runjobs().arg(&job).assert().code(0);
    assert_eq!(calls(dir.path()).len(), 3);
    std::fs::write(dir.path().join("data/two.txt"), "TWO, longer").unwrap();
    let out = dir.path().join("out/c.json");
    let run = runjobs()
        .arg(&job)
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(calls(dir.path()), set(&["data/two.txt"]));
    assert!(
        stderr(&run).contains("3 ok (2 reused)") || stderr(&run).contains("6 ok (4 reused)"),
        "{}",
        stderr(&run)
    );
    let doc = read_json(&out);
    assert_eq!(doc["summary"]["reused"], 4);
    let sizes = by_input(&doc, 0);
    assert_eq!(sizes["data/two.txt"]["output"], "11");
    assert!(sizes["data/two.txt"]["reused_from"].is_null());
    let hashes = by_input(&doc, 1);
    let expected: String = Sha256::digest(b"TWO, longer")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hashes["data/two.txt"]["output"], expected);
    assert!(hashes["data/two.txt"]["reused_from"].is_null());
    for name in ["data/one.txt", "data/three.txt"] {
        assert!(hashes[name]["reused_from"].is_string(), "{}", hashes[name]);
    }
}

#[test]
fn reuse_latest_runs_only_new_and_changed_files_and_keeps_each_results_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["1", "2", "3"] {
        let path = write(dir.path(), &format!("inbox/{name}.csv"), name);
        set_mtime(&path, -100);
    }
    let job = write(
        dir.path(),
        "nightly.toml",
        &format!(
            "[functions.size]\n{SIZE_COMMAND}\n\
             [[task]]\nfunction = \"size\"\ninputs = {{ glob = \"inbox/*.csv\" }}\n\
             [output]\npath = \"out/{{job}}-{{timestamp}}.json\"\nkeep = 3\nreuse = \"latest\"\n"
        ),
    );
    runjobs().arg(&job).assert().code(0);
    assert_eq!(calls(dir.path()).len(), 3);
    // Results files are named to the second.
    std::thread::sleep(Duration::from_millis(1100));
    write(dir.path(), "inbox/4.csv", "4");
    write(dir.path(), "inbox/5.csv", "5");
    write(dir.path(), "inbox/2.csv", "2 and more");
    let dry = runjobs().arg(&job).arg("--dry-run").output().unwrap();
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains("3 of 5 items left (2 done)"), "{plan}");
    // It lists the items that would run, not the ones that would be reused.
    let listed: Vec<&str> = plan.lines().filter(|l| l.contains(" #")).collect();
    assert_eq!(listed.len(), 3, "{plan}");
    assert!(
        !plan.contains("inbox/1.csv") && !plan.contains("inbox/3.csv"),
        "{plan}"
    );
    let every = runjobs().arg(&job).arg("--dry-run=all").output().unwrap();
    let every = String::from_utf8_lossy(&every.stdout);
    assert_eq!(every.lines().count(), 3, "{every}");
    assert!(
        every.contains("#1 ") && every.contains("#3 ") && every.contains("#4 "),
        "{every}"
    );
    assert!(calls(dir.path()).is_empty(), "a dry run runs nothing");
    let run = runjobs().arg(&job).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(
        calls(dir.path()),
        set(&["inbox/2.csv", "inbox/4.csv", "inbox/5.csv"])
    );
    assert!(stderr(&run).contains("5 ok (2 reused)"), "{}", stderr(&run));
    let doc = read_json(&dir.path().join("out/nightly-latest.json"));
    let results = by_input(&doc, 0);
    assert_eq!(results.len(), 5);
    assert!(results.values().all(|r| r["status"] == "ok"));
    assert_eq!(results["inbox/2.csv"]["output"], "10");
    let index = std::fs::read_to_string(dir.path().join("out/nightly.history.jsonl")).unwrap();
    let last: Value = serde_json::from_str(index.lines().last().unwrap()).unwrap();
    assert_eq!(last["summary"]["ok"], 5);
    assert_eq!(last["summary"]["reused"], 2);
    let report = runjobs()
        .arg("report")
        .arg(dir.path().join("out/nightly-latest.json"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&report.stdout);
    assert!(shown.contains("5 ok (2 reused)"), "{shown}");
    // Nothing changed: the next run computes nothing and still lists every item.
    std::thread::sleep(Duration::from_millis(1100));
    runjobs().arg(&job).assert().code(0);
    assert!(calls(dir.path()).is_empty());
    let doc = read_json(&dir.path().join("out/nightly-latest.json"));
    assert_eq!(doc["summary"]["reused"], 5);
    assert_eq!(results_files(&dir.path().join("out")), 3);
}

fn results_files(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("nightly-2") && name.ends_with(".json")
        })
        .count()
}

#[test]
fn reuse_from_another_jobs_results_reuses_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let squares = write(
        dir.path(),
        "squares.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1, 2, 3]\n",
    );
    let cubes = write(
        dir.path(),
        "cubes.toml",
        "[[task]]\nfunction = \"cube\"\ninputs = [1, 2, 3]\n",
    );
    let first = dir.path().join("squares.json");
    runjobs()
        .arg(&squares)
        .arg("-o")
        .arg(&first)
        .assert()
        .code(0);
    let second = dir.path().join("cubes.json");
    let run = runjobs()
        .arg(&cubes)
        .arg("-o")
        .arg(&second)
        .arg("--reuse")
        .arg(&first)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("nothing is reused"),
        "{}",
        stderr(&run)
    );
    let doc = read_json(&second);
    assert_eq!(outputs(&doc, 0), [1, 8, 27].map(Value::from).to_vec());
    assert!(results(&doc, 0).iter().all(|r| r["reused_from"].is_null()));
    // A missing FROM is a mistake, not a first run.
    let run = runjobs()
        .arg(&cubes)
        .arg("--reuse")
        .arg(dir.path().join("nope.json"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("nope.json"), "{}", stderr(&run));
}

#[test]
fn a_result_without_a_fingerprint_stands_in_only_if_its_file_is_older_than_its_run() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["old", "new"] {
        let path = write(dir.path(), &format!("{name}.txt"), name);
        set_mtime(&path, -100);
    }
    let job = write(
        dir.path(),
        "sizes.toml",
        &format!(
            "[functions.size]\n{SIZE_COMMAND}\ninput = \"path\"\n\
             [[task]]\nfunction = \"size\"\ninputs = [\"old.txt\", \"new.txt\"]\n"
        ),
    );
    let out = dir.path().join("out.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    calls(dir.path());
    // As a runjobs from before fingerprints wrote it.
    let mut doc = read_json(&out);
    for r in doc["tasks"][0]["results"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("fingerprint").unwrap();
    }
    std::fs::write(&out, doc.to_string()).unwrap();
    // Changed after that run started (its time only: make's rule looks at nothing else).
    set_mtime(&dir.path().join("new.txt"), 100);
    let run = resume_in_place(&job, &out);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(calls(dir.path()), set(&["new.txt"]));
    let results = by_input(&read_json(&out), 0);
    assert!(results["old.txt"]["reused_from"].is_string());
    // Reused, it gains its file's state: the next run compares fingerprints.
    assert!(
        results["old.txt"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("mtime:"))
    );
    std::fs::write(dir.path().join("old.txt"), "OLD").unwrap();
    set_mtime(&dir.path().join("old.txt"), -100);
    resume_in_place(&job, &out);
    assert_eq!(calls(dir.path()), set(&["old.txt"]));
}

fn resume_in_place(job: &Path, out: &Path) -> std::process::Output {
    runjobs()
        .arg(job)
        .arg("--resume")
        .arg(out)
        .output()
        .unwrap()
}
