//! `runjobs report`: the summary of a run, the history of several, the diff of two, from
//! every format runjobs writes and from a journal.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// A command that succeeds, fails, hangs or fails once by its input: `fail` exits 3,
/// `slow` outlives its timeout, `flaky` fails its first attempt; anything else is echoed,
/// unless a file `INPUT.fails` says it fails (the function stays the same).
const FUNCTION: &str = r#"[functions.f]
command = ["sh", "-c", "case $1 in fail) echo broken >&2; exit 3;; slow) sleep 5;; flaky) if [ -e flaky.done ]; then echo ok; else touch flaky.done; exit 1; fi;; *) if [ -e $1.fails ]; then exit 3; fi; echo $1;; esac", "sh", "{input}"]
timeout = "500ms"
retries = { count = 1, on = ["exit:1"] }
"#;

fn job(dir: &Path, inputs: &str) -> PathBuf {
    write(
        dir,
        "job.toml",
        &format!("workers = 1\n{FUNCTION}[[task]]\nfunction = \"f\"\ninputs = {inputs}\n"),
    )
}

fn report(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let output = runjobs().arg("report").args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr(&output),
    )
}

fn report_json(path: &Path) -> Value {
    let (code, stdout, err) = report(&[path.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn a_summary_counts_every_status_and_names_the_failures_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), r#"["a", "fail", "slow", "flaky", "b"]"#);
    let mut summaries = Vec::new();
    for ext in ["json", "toml", "jsonl"] {
        let _ = std::fs::remove_file(dir.path().join("flaky.done"));
        let out = dir.path().join(format!("r.{ext}"));
        runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);

        let (code, text, err) = report(&[out.as_os_str()]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            text.contains("5 items: 3 ok, 1 failed, 1 timed out, 0 skipped"),
            "{text}"
        );
        assert!(
            text.contains("1 retried, 1 passed only on a retry (flaky)"),
            "{text}"
        );
        assert!(text.contains("f[2] (input slow): timed out"), "{text}");
        assert!(text.contains("exit code 3"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour off a terminal: {text}");

        let doc = report_json(&out);
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["summary"]["ok"], 3, "{doc}");
        assert_eq!(doc["summary"]["timed_out"], 1);
        assert_eq!(doc["tasks"][0]["flaky"], 1);
        assert_eq!(doc["failures"].as_array().unwrap().len(), 2);
        // The slowest item is the one that hung until its timeout.
        assert_eq!(doc["slowest"][0]["input"], "slow", "{doc}");
        let utilisation = doc["tasks"][0]["utilisation"].as_f64().unwrap();
        assert!(utilisation > 0.5 && utilisation <= 1.0, "{doc}");
        summaries.push(doc["summary"].clone());
    }
    assert!(summaries.windows(2).all(|w| w[0] == w[1]), "{summaries:?}");
}

#[test]
fn a_stopped_run_reports_its_skipped_items_and_a_journal_reads_as_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), r#"["a", "fail", "b", "c"]"#);
    let out = dir.path().join("r.json");
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .arg("--fail-fast")
        .assert()
        .code(1);
    let doc = report_json(&out);
    assert_eq!(doc["summary"]["skipped"], 2, "{doc}");
    assert_eq!(doc["status"], "failed");

    // A journal left by a killed run: what finished, and the run marked unfinished.
    let journal = dir.path().join("killed.json.journal");
    std::fs::copy(&out, dir.path().join("scratch.json")).unwrap();
    let records: Vec<String> = results(&read_json(&out), 0)
        .iter()
        .take(2)
        .map(|r| r.to_string())
        .collect();
    let header = r#"{"journal":1,"job":"job","job_file":"job.toml","started_at":"2026-11-24T20:00:00.000Z"}"#;
    let task = r#"{"begin_task":{"name":"job","function":"f","function_hash":"ab","workers":1}}"#;
    std::fs::write(
        &journal,
        format!("{header}\n{task}\n{}\n{}\n", records[0], records[1]),
    )
    .unwrap();
    let doc = report_json(&journal);
    assert_eq!(doc["status"], "unfinished", "{doc}");
    assert_eq!(doc["summary"]["total"], 2);
    assert_eq!(doc["job"], "job", "a journal names its job: {doc}");
}

#[test]
fn unreadable_and_foreign_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), r#"["a", "b"]"#);
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    let torn = dir.path().join("torn.json");
    std::fs::write(&torn, &text[..text.len() / 2]).unwrap();
    let foreign = write(dir.path(), "foreign.json", r#"{"hello": [1, 2]}"#);
    let toml = write(dir.path(), "foreign.toml", "a = 1\n");
    let missing = dir.path().join("missing.json");
    for bad in [&torn, &foreign, &toml, &missing] {
        let (code, _, err) = report(&[bad.as_os_str()]);
        assert_eq!(code, Some(2), "{}: {err}", bad.display());
        assert!(err.contains(&bad.display().to_string()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Runs `job` over `inputs`, results into `name`; `fail` fails.
fn run_into(dir: &Path, name: &str, inputs: &str) -> PathBuf {
    let job = job(dir, inputs);
    let out = dir.join(name);
    let status = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert!(
        status.status.code().is_some_and(|c| c <= 1),
        "{}",
        stderr(&status)
    );
    // Distinct start times, to the millisecond.
    std::thread::sleep(std::time::Duration::from_millis(20));
    out
}

#[test]
fn a_history_reads_one_line_a_run_oldest_first_with_changes_and_flips() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let first = run_into(&runs, "d.json", r#"["a", "b", "c"]"#);
    write(&runs, "b.fails", "");
    let second = run_into(&runs, "c.json", r#"["a", "b", "c"]"#);
    let third = run_into(&runs, "b.toml", r#"["fail", "b", "c"]"#);
    std::fs::remove_file(runs.join("b.fails")).unwrap();
    let fourth = run_into(&runs, "a.jsonl", r#"["a", "b", "c", "d"]"#);
    // Named out of order: the lines come in time order.
    let args = [&fourth, &second, &first, &third].map(|p| p.as_os_str().to_owned());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (code, text, err) = report(&args);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains("d.json") && lines[0].contains("3 items: 3 ok, 0 failed"),
        "{text}"
    );
    assert!(
        lines[1].contains("c.json") && lines[1].contains("+1 failed"),
        "{text}"
    );
    assert!(
        lines[2].contains("b.toml") && lines[2].contains("1 ok, 2 failed"),
        "{text}"
    );
    assert!(
        lines[3].contains("a.jsonl") && lines[3].contains("4 items: 4 ok"),
        "{text}"
    );

    // A folder is its run index when it has one, else its results files (the job file
    // beside them is skipped with a note); `--json` says the same either way.
    let (code, stdout, err) = report(&[runs.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, Some(0), "{err}");
    let from_index: Value = serde_json::from_str(&stdout).unwrap();
    std::fs::remove_file(runs.join("job.history.jsonl")).unwrap();
    let doc: Value = {
        let (code, stdout, err) = report(&[runs.as_os_str(), "--json".as_ref()]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("note: skipped") && err.contains("job.toml"),
            "{err}"
        );
        serde_json::from_str(&stdout).unwrap()
    };
    let counts = |doc: &Value| -> Vec<Value> {
        doc["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["summary"].clone())
            .collect()
    };
    assert_eq!(counts(&from_index), counts(&doc));
    assert_eq!(from_index["flaky"], doc["flaky"]);
    let runs_seen = doc["runs"].as_array().unwrap();
    assert_eq!(runs_seen.len(), 4);
    let totals: Vec<u64> = runs_seen
        .iter()
        .map(|r| r["summary"]["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [3, 3, 3, 4]);
    // `b` went ok → failed → failed → ok; `fail` always failed, `a` and `c` never did.
    let flaky: Vec<&str> = doc["flaky"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["input"].as_str().unwrap())
        .collect();
    assert_eq!(flaky, ["b"], "{doc}");
}

#[test]
fn a_diff_matches_items_by_identity_and_exits_1_on_new_failures() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.fails", "");
    let old = run_into(dir.path(), "old.json", r#"["a", "b", "c", "fail", "gone"]"#);
    std::fs::remove_file(dir.path().join("c.fails")).unwrap();
    write(dir.path(), "b.fails", "");
    // Reordered: `b` newly fails, `c` is fixed, `fail` still fails, `gone` is gone, `new`
    // and a second `a` are added.
    let new = run_into(
        dir.path(),
        "new.json",
        r#"["new", "fail", "a", "c", "b", "a"]"#,
    );
    let (code, stdout, err) = report(&[
        "--diff".as_ref(),
        old.as_os_str(),
        new.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(code, Some(1), "`b` newly fails: {err}");
    let diff: Value = serde_json::from_str(&stdout).unwrap();
    let inputs = |group: &str| -> Vec<String> {
        diff[group]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["input"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(inputs("newly_failing"), ["b"], "{diff}");
    assert_eq!(inputs("fixed"), ["c"]);
    assert_eq!(inputs("still_failing"), ["fail"]);
    assert_eq!(inputs("added"), ["new", "a"]);
    assert_eq!(inputs("removed"), ["gone"]);

    let (code, text, _) = report(&["--diff".as_ref(), old.as_os_str(), new.as_os_str()]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("1 newly failing, 1 fixed, 1 still failing, 2 added, 1 removed"),
        "{text}"
    );
    // Nothing new fails the other way round: exit 0.
    let (code, _, _) = report(&["--diff".as_ref(), new.as_os_str(), new.as_os_str()]);
    assert_eq!(code, Some(0));

    // Another function is other items: everything is added and removed.
    let other = dir.path().join("other.json");
    let job = write(
        dir.path(),
        "other.toml",
        "[[task]]\nname = \"job\"\nfunction = \"upper\"\ninputs = [\"a\"]\n",
    );
    runjobs().arg(&job).arg("-o").arg(&other).assert().code(0);
    let (code, text, _) = report(&["--diff".as_ref(), old.as_os_str(), other.as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 added, 5 removed"), "{text}");
}

/// Chromium, if this machine has it (Debian package `chromium`; `.ci/run` installs it).
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The page as a browser renders it: `--dump-dom`, with scripts allowed or blocked (by a
/// Content-Security-Policy of `script-src 'none'`, as CSP-strict viewers such as Jenkins
/// serve reports); and what the browser said on stderr (console messages among it).
fn rendered(page: &Path, scripts: bool) -> Option<(String, String)> {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no chromium on this machine (Debian package `chromium`)");
        return None;
    };
    let mut cmd = std::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    let blocked = page.with_extension("csp.html");
    let shown = if scripts {
        page.to_path_buf()
    } else {
        let html = std::fs::read_to_string(page).unwrap();
        let csp =
            r#"<head><meta http-equiv="Content-Security-Policy" content="script-src 'none'">"#;
        std::fs::write(&blocked, html.replacen("<head>", csp, 1)).unwrap();
        blocked
    };
    let output = cmd
        .arg("--dump-dom")
        .arg(format!("file://{}", shown.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    Some((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr(&output),
    ))
}

#[test]
fn the_html_report_draws_a_lane_per_worker_and_a_bar_per_item_without_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\n[[task]]\nfunction = \"sleep\"\ninputs = [0.01, 0.02, 0.01, 0.03, 0.01, 0.02, \"x\", 0.01]\n",
    );
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let page = dir.path().join("r.html");
    let (code, _, err) = report(&[out.as_os_str(), "--html".as_ref(), page.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    for fetch in ["http://", "https://", "src=", "<link"] {
        assert!(!html.contains(fetch), "the page fetches nothing: `{fetch}`");
    }
    let workers: std::collections::BTreeSet<u64> = results(&read_json(&out), 0)
        .iter()
        .map(|r| r["worker"].as_u64().unwrap())
        .collect();
    for scripts in [false, true] {
        let Some((dom, said)) = rendered(&page, scripts) else {
            return;
        };
        assert_eq!(dom.matches("class=\"item ").count(), 8, "one bar per item");
        assert_eq!(dom.matches("class=\"item failed\"").count(), 1);
        assert_eq!(dom.matches("class=\"lane\"").count(), workers.len());
        assert!(dom.contains("8 items: 7 ok, 1 failed"), "the summary");
        assert!(dom.contains("id=\"running\"") && dom.contains("id=\"durations\""));
        assert!(
            !said.contains("Uncaught") && !said.contains("SyntaxError"),
            "{said}"
        );
        assert_eq!(
            said.contains("Content Security Policy"),
            !scripts,
            "the script was blocked exactly when asked: {said}"
        );
    }
}

#[test]
fn the_html_of_a_big_run_stays_small_and_junit_has_a_case_per_item() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1_000_000;
    let big = write(
        dir.path(),
        "job.toml",
        &format!("workers = 2\n[[task]]\nfunction = \"square\"\ninputs = {{ range = [0, {n}] }}\n"),
    );
    let out = dir.path().join("r.jsonl");
    runjobs().arg(&big).arg("-o").arg(&out).assert().code(0);
    let page = dir.path().join("r.html");
    let (code, _, err) = report(&[out.as_os_str(), "--html".as_ref(), page.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let size = std::fs::metadata(&page).unwrap().len();
    // A million items: drawn from time bins past a few thousand, so a page of a few MB
    // at most (about 100 KB in fact).
    assert!(size < 4_000_000, "{size} bytes");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("class=\"item ").count(), 0);
    assert!(html.matches("class=\"bin ").count() > 10);

    // JUnit: a test case per item, a failure element per failed item, flaky retries.
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), r#"["a", "fail", "slow", "flaky", "b"]"#);
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let xml_file = dir.path().join("r.xml");
    let (code, _, err) = report(&[out.as_os_str(), "--junit".as_ref(), xml_file.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let xml = std::fs::read_to_string(&xml_file).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.tests, 5);
    assert_eq!(parsed.failures, 1);
    assert_eq!(parsed.errors, 1, "the timed-out item");
    assert_eq!(xml.matches("<testcase ").count(), 5);
    assert_eq!(xml.matches("<failure").count(), 1);
    assert!(xml.contains("flakyFailure"), "{xml}");
}

#[test]
fn the_report_is_coloured_on_a_terminal_unless_no_color_says_not() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), r#"["a", "fail"]"#);
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    // `script` (util-linux) gives the report a terminal.
    let on_terminal = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args([
            "-qec",
            &format!("{BIN} report {}", out.display()),
            "/dev/null",
        ]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        cmd.output()
    };
    let Ok(coloured) = on_terminal(false) else {
        eprintln!("skipped: no `script` on this machine");
        return;
    };
    let coloured = String::from_utf8_lossy(&coloured.stdout).into_owned();
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    let plain = on_terminal(true).unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert!(plain.contains("2 items: 1 ok, 1 failed"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "{plain}");
}

#[test]
fn a_cluster_runs_workers_on_two_nodes_with_one_pid_get_a_lane_each() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.json");
    let record = |index: u64, node: &str, start: f64| {
        format!(
            r#"{{"index":{index},"input":{index},"status":"ok","output":{index},"attempts":1,"started_s":{start},"duration_s":0.5,"worker":4242,"node":"{node}"}}"#
        )
    };
    std::fs::write(
        &results,
        format!(
            r#"{{"version":1,"job":"x","job_file":"/x.toml","started_at":"2026-12-02T08:00:00.000Z","tasks":[{{"name":"sq","function":"builtin:square","function_hash":"h","workers":2,"results":[{},{}],"summary":{{"total":2,"ok":2,"failed":0,"timed_out":0,"skipped":0}}}}],"status":"ok","finished_at":"2026-12-02T08:00:01.000Z","duration_s":1.0,"summary":{{"total":2,"ok":2,"failed":0,"timed_out":0,"skipped":0}}}}"#,
            record(0, "node-a", 0.1),
            record(1, "node-b", 0.1)
        ),
    )
    .unwrap();
    let page = dir.path().join("r.html");
    let (code, _, err) = report(&[results.as_os_str(), "--html".as_ref(), page.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("class=\"lane\"").count(), 2, "{html}");
    assert!(html.contains(">pid 4242 on node-a<") && html.contains(">pid 4242 on node-b<"));
}

#[test]
fn the_report_names_the_biggest_memory_users_and_sums_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    // A real run: each item touches INPUT MiB.
    let job = write(
        dir.path(),
        "mem.toml",
        "[functions.m]\ncommand = [\"python3\", \"-c\", \"import sys; b = b'x' * (int(sys.argv[1]) << 20)\", \"{input}\"]\n\
         [[task]]\nfunction = \"m\"\nworkers = 2\ninputs = [40, 160, 80]\n",
    );
    let out = dir.path().join("mem.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    let doc = report_json(&out);
    let biggest: Vec<u64> = doc["biggest_memory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_u64().unwrap())
        .collect();
    assert_eq!(biggest, [1, 2, 0], "{doc}");
    let peak = doc["tasks"][0]["peak_rss_kib"].as_u64().unwrap();
    assert!(peak >= 160 * 1024, "{doc}");
    assert!(doc["tasks"][0]["cpu_s"].as_f64().unwrap() > 0.0, "{doc}");
    let (code, text, err) = report(&[out.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let section = text
        .split("biggest memory users\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let first = section.lines().next().unwrap();
    assert!(
        first.contains("m[1] (input 160)") && first.contains("max RSS"),
        "{text}"
    );
    assert!(text.contains("peak memory"), "{text}");
}

/// CPU time of the processes `runjobs` starts whose command line holds `mark`, as `/proc`
/// last showed each before it went: watched from outside (every few milliseconds, so a
/// worker's last figure comes after its last item) until `runjobs` exits. Seconds.
fn cpu_of_children_watched(runjobs: &mut std::process::Child, mark: &str) -> f64 {
    let tick: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let parent = runjobs.id().to_string();
    // `/proc/PID/stat` after the `(comm)`: state, ppid, …, utime (the 12th), stime.
    let stat_of = |pid: &str| -> Option<Vec<String>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        Some(rest.split_whitespace().map(str::to_owned).collect())
    };
    let mut last: std::collections::HashMap<String, f64> = Default::default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut round = 0;
    while runjobs.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "runjobs hangs");
        if round % 10 == 0 {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let pid = entry.file_name().to_string_lossy().into_owned();
                let ours = stat_of(&pid).is_some_and(|f| f.get(1) == Some(&parent));
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if ours && String::from_utf8_lossy(&cmdline).contains(mark) {
                    last.entry(pid).or_insert(0.0);
                }
            }
        }
        round += 1;
        for (pid, cpu) in &mut last {
            if let Some(f) = stat_of(pid).filter(|f| f.get(1) == Some(&parent)) {
                let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
                *cpu = ticks / tick;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(!last.is_empty(), "no `{mark}` process was seen");
    last.values().sum()
}

/// The task's CPU was the sum of the items that were sampled (`CPU 0.0006s` for a
/// million squares whose workers used a quarter of a second); it is the workers' own total.
#[test]
fn a_builtin_tasks_cpu_is_what_its_workers_used() {
    let dir = tempfile::tempdir().unwrap();
    let job = |n: u64| {
        let body = format!(
            "[[task]]\nfunction = \"square\"\nworkers = 4\ninputs = {{ range = [0, {n}] }}\n"
        );
        write(dir.path(), &format!("job{n}.toml"), &body)
    };
    let million = job(1_000_000);
    for ext in ["json", "jsonl"] {
        let out = dir.path().join(format!("r.{ext}"));
        let mut run = std::process::Command::new(BIN)
            .arg(&million)
            .arg("-o")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let watched = cpu_of_children_watched(&mut run, "__worker");
        assert!(run.wait().unwrap().success());
        let doc = report_json(&out);
        let task = &doc["tasks"][0];
        let cpu = task["cpu_s"].as_f64().unwrap();
        assert_eq!(task["worker_cpu_s"].as_f64(), Some(cpu), "{ext}: {task}");
        assert!(watched > 0.1, "{ext}: the workers used {watched}s");
        assert!(
            (cpu - watched).abs() <= 0.2 * watched,
            "{ext}: the report says {cpu}s, the workers used {watched}s"
        );
        let items = task["items_cpu_s"].as_f64().unwrap();
        assert!(items <= cpu, "{ext}: {task}");
    }
    // TOML keeps the figure too (read back in the time a debug build reads a small file).
    let out = dir.path().join("r.toml");
    runjobs()
        .arg(job(1000))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    let written: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("worker_cpu_s = "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert_eq!(
        report_json(&out)["tasks"][0]["cpu_s"].as_f64(),
        Some(written)
    );
    let (_, text, _) = report(&[out.as_os_str()]);
    assert!(
        text.contains("(the workers' in all; the items' own"),
        "{text}"
    );

    // A file of an older runjobs, without the workers' figure, reports its items' sum.
    let out = dir.path().join("old.json");
    runjobs()
        .arg(job(1000))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    let at = text
        .find(",\"worker_cpu_s\":")
        .expect("the figure is written");
    let end = at + text[at..].find('}').unwrap();
    std::fs::write(&out, format!("{}{}", &text[..at], &text[end..])).unwrap();
    let task = &report_json(&out)["tasks"][0];
    assert!(task.get("worker_cpu_s").is_none(), "{task}");
    assert_eq!(task["cpu_s"], task["items_cpu_s"], "{task}");
}

/// A command task (a process per item) had no timeline past a few processes;
/// each item is drawn on the lowest slot free at its start, so 80 items on 4 workers take at
/// most 4 lanes, each bar coloured by its status with a tooltip that needs no script. The
/// durations are a histogram per task, failures marked.
#[test]
fn a_command_tasks_items_are_drawn_on_its_slots_with_a_tooltip_each() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 4\n[functions.s]\ncommand = [\"sh\", \"-c\", \"sleep 0.0$(( $1 % 5 )); [ $(( $1 % 20 )) -ne 7 ] || exit 3; [ $1 -ne 42 ] || sleep 5\", \"sh\", \"{input}\"]\ntimeout = \"300ms\"\n\
         [[task]]\nname = \"quick\"\nfunction = \"square\"\ninputs = { range = [0, 5000] }\n\
         [[task]]\nname = \"shell\"\nfunction = \"s\"\ninputs = { range = [0, 80] }\n",
    );
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(1);
    let page = dir.path().join("r.html");
    let (code, _, err) = report(&[out.as_os_str(), "--html".as_ref(), page.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let Some((dom, _)) = rendered(&page, false) else {
        return;
    };
    let svg = dom
        .split("<svg id=\"timeline\"")
        .nth(1)
        .and_then(|rest| rest.split("</svg>").next())
        .unwrap_or_else(|| panic!("no timeline: {dom}"));
    let shell = svg
        .split("task shell: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no lanes for the command task: {svg}"));
    let lanes = shell.matches("class=\"lane\"").count();
    assert!((1..=4).contains(&lanes), "{lanes} lanes for 4 workers");
    assert!(shell.contains(">slot 1<"), "{shell}");
    assert_eq!(shell.matches("class=\"item ").count(), 80, "a bar per item");
    assert_eq!(shell.matches("class=\"item failed\"").count(), 4);
    assert_eq!(shell.matches("class=\"item timed_out\"").count(), 1);
    for (index, status) in [(7, "failed"), (42, "timed out"), (3, "ok")] {
        let title = format!("<title>shell[{index}] (input {index}): {status} in ");
        assert!(shell.contains(&title), "no `{title}` in {shell}");
    }
    // The builtin task keeps a lane per worker process, named by pid.
    let quick = svg.split("task shell: ").next().unwrap();
    assert!(
        quick.contains("task quick: ") && quick.contains(">pid "),
        "{quick}"
    );
    // A histogram per task, the command's failures and timeout in their colours.
    let durations = dom.split("id=\"durations\"").nth(1).unwrap();
    assert_eq!(durations.matches("<svg class=\"durations\"").count(), 2);
    let shell_histogram = durations
        .split("item durations of task shell")
        .nth(1)
        .unwrap();
    assert!(
        shell_histogram.contains("class=\"failed\""),
        "{shell_histogram}"
    );
    assert!(
        shell_histogram.contains("class=\"timed_out\""),
        "{shell_histogram}"
    );
    assert!(shell_histogram.contains(">80 items<"), "{shell_histogram}");
}

/// Batched Python items have durations of about 0 (a batch's time spread over its
/// items), which made busy time and utilisation about 0 while the workers worked; the
/// workers' CPU counts as busy time then.
#[test]
fn quick_python_items_count_their_workers_cpu_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fns.py", "def square(n):\n    return n * n\n");
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\n[functions.sq]\npython = \"fns.py:square\"\n[[task]]\nfunction = \"sq\"\ninputs = { range = [0, 200000] }\n",
    );
    let out = dir.path().join("r.json");
    runjobs().arg(&job).arg("-o").arg(&out).assert().code(0);
    let task = &report_json(&out)["tasks"][0];
    let (busy, cpu) = (
        task["busy_s"].as_f64().unwrap(),
        task["cpu_s"].as_f64().unwrap(),
    );
    let (wall, utilisation) = (
        task["wall_s"].as_f64().unwrap(),
        task["utilisation"].as_f64().unwrap(),
    );
    assert_eq!(task["worker_cpu_s"].as_f64(), Some(cpu), "{task}");
    assert!(cpu > busy, "{task}");
    let expected = (cpu / (wall * 2.0)).min(1.0);
    assert!((utilisation - expected).abs() < 1e-9, "{task}");
    let (_, text, _) = report(&[out.as_os_str()]);
    assert!(
        text.contains("(the workers' CPU; the items' own durations sum to"),
        "{text}"
    );
}
