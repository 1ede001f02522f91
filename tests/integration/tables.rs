//! Results as tables: `report --csv`, and the README's pandas, DuckDB and jq recipes run
//! with the real tools on a JSON Lines results file (one row an item, an integer `index`).
//! pandas and DuckDB come from the venv `.ci/run` makes (`RUNJOBS_TEST_PYTHON`); with
//! `RUNJOBS_REQUIRE_PYTOOLS` set a missing tool fails the test instead of skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// The code block after `<!-- recipe: NAME -->` in the README.
fn recipe(name: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- recipe: {name} -->");
    let after = &readme[readme.find(&marker).expect("the README has the recipe")..];
    let body = &after[after.find('\n').unwrap() + 1..];
    let body = &body[body.find('\n').unwrap() + 1..]; // past the opening fence
    body[..body.find("```").unwrap()].to_owned()
}

/// A run of two tasks (8 items, one failing, outputs of several kinds) to JSON Lines.
fn mixed_results(dir: &Path) -> PathBuf {
    let job = write(
        dir,
        "job.toml",
        "[functions.half]\ncommand = [\"sh\", \"-c\", \"test $1 -ne 3 && echo $(($1 / 2))\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"half\"\ninputs = [1, 2, 3, 4, 5]\n\
         [[task]]\nname = \"tables\"\nfunction = \"identity\"\ninputs = [{ a = 1 }, [1, 2], \"x, \\\"y\\\"\"]\n\
         [functions.identity]\nbuiltin = \"identity\"\n",
    );
    let out = dir.join("x.jsonl");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    out
}

#[test]
fn every_json_lines_line_says_what_it_is_and_the_recipes_give_one_row_an_item() {
    let dir = tempfile::tempdir().unwrap();
    let out = mixed_results(dir.path());
    let text = std::fs::read_to_string(&out).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 9);
    assert!(records[..8].iter().all(|r| r["record"] == "item"), "{text}");
    assert_eq!(records[8]["record"], "run");
    // runjobs itself still reads it (report, resume).
    let report = runjobs().arg("report").arg(&out).output().unwrap();
    assert!(String::from_utf8_lossy(&report.stdout).contains("8 items"));

    let Some(python) = python_with(&["pandas", "duckdb"]) else {
        return;
    };
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::copy(&out, dir.path().join("out/x.jsonl")).unwrap();
    let pandas = format!(
        "{}\nprint(len(items), items['index'].dtype, sorted(items.columns))",
        recipe("pandas")
    );
    let said = run_python(&python, dir.path(), &pandas);
    assert!(said.starts_with("8 int64 "), "{said}");
    assert!(
        !said.contains("'version'") && !said.contains("'summary'"),
        "{said}"
    );
    let duckdb = format!(
        "{}\nprint(len(items.fetchall()), dict(zip(items.columns, items.types))['index'], 'record' in items.columns)",
        recipe("duckdb")
    );
    assert_eq!(run_python(&python, dir.path(), &duckdb), "8 BIGINT False");

    if Command::new("jq").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("RUNJOBS_REQUIRE_PYTOOLS").is_none(),
            "RUNJOBS_REQUIRE_PYTOOLS is set but jq is missing"
        );
        eprintln!("skipped the jq recipe: no jq");
        return;
    }
    let jq = Command::new("sh")
        .current_dir(dir.path())
        .args(["-c", &recipe("jq")])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&jq.stdout);
    assert_eq!(lines.lines().count(), 8, "{lines}");
    let first = r#"{"task":"half","index":0,"status":"ok","output":"0"}"#;
    assert!(lines.lines().any(|l| l == first), "{lines}");
}

#[test]
fn report_csv_writes_one_row_an_item_that_pandas_and_duckdb_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = mixed_results(dir.path());
    // From JSON Lines, and from the same results as JSON.
    let json = dir.path().join("x.json");
    let job = dir.path().join("job.toml");
    runjobs().arg(&job).arg("-o").arg(&json).assert().code(1);
    for (results, csv) in [(&out, "a.csv"), (&json, "b.csv")] {
        let csv_path = dir.path().join(csv);
        runjobs()
            .arg("report")
            .arg(results)
            .arg("--csv")
            .arg(&csv_path)
            .assert()
            .code(0);
        let mut reader = csv::Reader::from_path(&csv_path).unwrap();
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header,
            [
                "task",
                "index",
                "input",
                "status",
                "output",
                "error",
                "attempts",
                "duration_s",
                "cpu_s",
                "max_rss_kib",
                "worker",
                "started_at",
                "reused_from"
            ]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 8);
        // In the file's order (JSON Lines: as items finished); found by task and index.
        let row = |task: &str, index: &str| -> Vec<String> {
            let found = rows.iter().find(|r| &r[0] == task && &r[1] == index);
            found.unwrap().iter().map(str::to_owned).collect()
        };
        assert_eq!(row("half", "1")[..6], ["half", "1", "2", "ok", "1", ""]);
        let failed = row("half", "2");
        assert_eq!(failed[3], "failed");
        assert!(failed[5].contains("exit"), "{failed:?}");
        assert_eq!(row("tables", "0")[2], r#"{"a":1}"#);
        assert_eq!(row("tables", "1")[4], "[1,2]");
        assert_eq!(row("tables", "2")[2], r#"x, "y""#);
        let started = &row("half", "0")[11];
        assert!(
            started.starts_with("20") && started.ends_with('Z'),
            "{started}"
        );
    }
    let Some(python) = python_with(&["pandas", "duckdb"]) else {
        return;
    };
    let code = "import pandas as pd, duckdb\n\
                df = pd.read_csv('a.csv')\n\
                t = duckdb.sql(\"SELECT * FROM read_csv_auto('a.csv')\")\n\
                print(len(df), df['index'].dtype, len(t.fetchall()))";
    assert_eq!(run_python(&python, dir.path(), code), "8 int64 8");
    // Several files: the CSV is of one run.
    let two = runjobs()
        .arg("report")
        .arg(&out)
        .arg(&json)
        .arg("--csv")
        .arg(dir.path().join("c.csv"))
        .output()
        .unwrap();
    assert_eq!(two.status.code(), Some(2));
    assert!(stderr(&two).contains("`--csv` takes one results file"));
}
