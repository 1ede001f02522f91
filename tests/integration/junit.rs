//! `report --junit` as strict consumers take it: the XML validates against `junit-10.xsd`
//! (the schema of Jenkins' xunit plugin, vendored under `tests/fixtures/junit/`) with the
//! real `xmlschema`, and `junitparser` reads back every item, the suites' times and what the
//! failed items printed. Both come from the venv `.ci/run` makes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// Items that pass, fail after printing (with terminal escapes and a control character),
/// hang past the timeout after printing, and pass only on their second attempt.
const JOB: &str = r#"workers = 2
[functions.f]
command = ["sh", "-c", '''
case $1 in
  fail) echo "partial out"; printf 'bad \033[31mred\033[0m \001 thing\n' >&2; exit 3;;
  hang) echo "before the hang"; sleep 5;;
  flaky) if [ -e flaky.done ]; then echo fine; else touch flaky.done; exit 1; fi;;
  *) echo "$1";;
esac''', "sh", "{input}"]
timeout = "500ms"
retries = { count = 1, on = ["exit:1"] }
[[task]]
function = "f"
inputs = ["a", "fail", "hang", "flaky", "b"]
[[task]]
name = "squares"
function = "square"
inputs = [1, 2, 3]
"#;

/// Validates the XML against the vendored XSD, then reads it with junitparser: the run's
/// attributes and, per suite and case, what a CI would show.
const CHECK: &str = r#"
import json, sys, xmlschema, junitparser
xml, xsd = sys.argv[1], sys.argv[2]
xmlschema.XMLSchema(xsd).validate(xml)
doc = junitparser.JUnitXml.fromfile(xml)
out = {"root": dict(doc._elem.attrib), "suites": []}
for suite in doc:
    cases = []
    for case in suite:
        cases.append({
            "name": case.name,
            "time": case.time,
            "results": [[r._tag, r.message, r.type] for r in case.result],
            "out": case.system_out,
            "err": case.system_err,
            "flaky": len(case._elem.findall("flakyFailure")),
        })
    out["suites"].append({
        "name": suite.name, "tests": suite.tests, "failures": suite.failures,
        "errors": suite.errors, "skipped": suite.skipped, "time": suite.time,
        "timestamp": suite.timestamp, "cases": cases,
    })
print(json.dumps(out))
"#;

fn xsd() -> PathBuf {
    repo().join("tests/fixtures/junit/junit-10.xsd")
}

/// `report --junit` of `results`, checked and read back by the Python tools.
fn junit_as_read(python: &Path, dir: &Path, results: &Path) -> Value {
    let xml = dir.join(format!(
        "{}.xml",
        results.file_name().unwrap().to_string_lossy()
    ));
    let output = runjobs()
        .arg("report")
        .arg(results)
        .arg("--junit")
        .arg(&xml)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let script = write(dir, "check.py", CHECK);
    let said = run_python(
        python,
        dir,
        &format!(
            "import runpy, sys; sys.argv = ['check', {:?}, {:?}]; runpy.run_path({:?})",
            xml.display().to_string(),
            xsd().display().to_string(),
            script.display().to_string()
        ),
    );
    serde_json::from_str(&said).unwrap_or_else(|e| panic!("{e}: {said}"))
}

#[test]
fn junit_validates_against_the_xunit_schema_and_junitparser_reads_every_item() {
    let Some(python) = python_with(&["xmlschema", "junitparser"]) else {
        return;
    };
    for format in ["json", "jsonl", "toml"] {
        let dir = tempfile::tempdir().unwrap();
        let job = write(dir.path(), "job.toml", JOB);
        let out = dir.path().join(format!("r.{format}"));
        let run = runjobs()
            .current_dir(dir.path())
            .arg(&job)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
        let read = junit_as_read(&python, dir.path(), &out);

        // The run: a time, and none of the attributes the schema refuses there.
        let root = &read["root"];
        assert_eq!(root["tests"], "8", "{format}: {root}");
        assert_eq!(root["failures"], "1", "{format}: {root}");
        assert_eq!(root["errors"], "1", "{format}: {root}");
        assert!(root.get("skipped").is_none(), "{format}: {root}");
        let run_time: f64 = root["time"].as_str().unwrap().parse().unwrap();
        assert!(run_time >= 0.5, "the hang took its timeout: {root}");

        let suites = read["suites"].as_array().unwrap();
        assert_eq!(suites.len(), 2, "{format}: {read}");
        let (f, squares) = (&suites[0], &suites[1]);
        assert_eq!(f["name"], "f");
        assert_eq!(
            (f["tests"].as_u64(), f["failures"].as_u64()),
            (Some(5), Some(1))
        );
        assert_eq!(
            (f["errors"].as_u64(), f["skipped"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(squares["name"], "squares");
        assert_eq!(squares["tests"].as_u64(), Some(3));
        for suite in suites {
            let timestamp = suite["timestamp"].as_str().unwrap_or_default();
            assert!(timestamp.starts_with("20"), "{format}: {suite}");
            assert!(suite["time"].as_f64().is_some(), "{format}: {suite}");
        }
        let suite_time = f["time"].as_f64().unwrap();
        assert!((0.5..run_time + 0.01).contains(&suite_time), "{f}");

        let case = |name: &str| {
            f["cases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"].as_str().unwrap().contains(name))
                .unwrap_or_else(|| panic!("{format}: no case {name} in {f}"))
                .clone()
        };
        let failed = case("fail");
        assert_eq!(failed["results"][0][0], "failure", "{failed}");
        assert!(
            failed["results"][0][1]
                .as_str()
                .unwrap()
                .starts_with("exit code 3"),
            "{failed}"
        );
        assert_eq!(failed["out"], "partial out", "{format}: {failed}");
        let err = failed["err"].as_str().unwrap();
        assert!(err.contains("bad red") && err.contains("thing"), "{err:?}");
        assert!(!err.contains(['\u{1b}', '\u{1}']), "{err:?}");

        let hung = case("hang");
        assert_eq!(hung["results"][0][0], "error", "{hung}");
        assert_eq!(hung["results"][0][2], "timeout", "{hung}");
        assert_eq!(hung["out"], "before the hang", "{format}: {hung}");

        let flaky = case("flaky");
        assert_eq!(
            flaky["results"],
            serde_json::json!([]),
            "it passed: {flaky}"
        );
        assert_eq!(flaky["flaky"], 1, "{flaky}");
        assert!(
            case("[0] a")["out"].is_null(),
            "an ok item's output is its result"
        );
    }
}

#[test]
fn items_a_stopped_run_skipped_are_skipped_cases() {
    let Some(python) = python_with(&["xmlschema", "junitparser"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 1\n[functions.f]\ncommand = [\"sh\", \"-c\", \"test $1 != bad\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = [\"bad\", \"a\", \"b\"]\n",
    );
    let out = dir.path().join("r.json");
    runjobs()
        .arg(&job)
        .arg("--fail-fast")
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let read = junit_as_read(&python, dir.path(), &out);
    let suite = &read["suites"][0];
    assert_eq!(suite["skipped"].as_u64(), Some(2), "{read}");
    let kinds: Vec<&str> = suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["results"][0][0].as_str().unwrap_or("passed"))
        .collect();
    assert_eq!(kinds, ["failure", "skipped", "skipped"], "{read}");
}
