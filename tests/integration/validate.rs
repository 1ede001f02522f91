//! `runjobs validate` and `runjobs schema` through the real binary: every bad fixture exits 2
//! and points at each of its problems; every good fixture and shipped job passes; the schema
//! printed is the shipped file.
//!
//! Each `tests/fixtures/bad/*.toml` states what must be found in `# expect: LINE:COL KEYWORD`
//! lines; the loader's unit tests (`src/job/load.rs`) check the same expectations in-process.

use std::path::{Path, PathBuf};
use std::time::Duration;

fn runjobs() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_runjobs"));
    // Paths in messages stay relative (`tests/fixtures/bad/x.toml:3:1`), as a user types them.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// The `*.toml` files of a folder under the repository root, sorted, as relative paths.
fn tomls(dir: &str) -> Vec<PathBuf> {
    let abs = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&abs)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", abs.display()))
        .map(|entry| entry.expect("a directory entry").file_name())
        .filter(|name| name.to_string_lossy().ends_with(".toml"))
        .map(|name| Path::new(dir).join(name))
        .collect();
    files.sort();
    files
}

/// The `# expect: LINE:COL KEYWORD` lines of a bad fixture.
fn expectations(path: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("readable");
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .filter_map(|l| l.split_once(' '))
        .map(|(pos, kw)| (pos.to_string(), kw.trim().to_string()))
        .collect()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_bad_fixture_exits_2_and_points_at_each_problem() {
    let files = tomls("tests/fixtures/bad");
    assert!(files.len() >= 70, "only {} bad fixtures", files.len());
    for path in files {
        let expects = expectations(&path);
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let output = runjobs()
            .arg("validate")
            .arg(&path)
            .output()
            .expect("runjobs runs");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{}:\n{err}", path.display());
        for (pos, keyword) in &expects {
            let at = format!("{}:{pos}", path.display());
            // Diagnostics are separated by blank lines; the keyword must be in the one at `pos`.
            let hit = err
                .split("\n\n")
                .any(|d| d.contains(&at) && d.contains(keyword.as_str()));
            assert!(
                hit,
                "no diagnostic at {at} mentioning `{keyword}` in:\n{err}"
            );
        }
        let last = format!("error: could not load `{}` due to ", path.display());
        assert!(err.contains(&last), "{err}");
    }
}

#[test]
fn a_nan_hides_no_other_mistake_and_tasks_are_named_one_way() {
    let path = Path::new("tests/fixtures/bad/nan_hides_no_other_mistake.toml");
    let output = runjobs().arg("validate").arg(path).output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("due to 5 previous errors"), "{err}");
    assert!(
        err.contains("unknown function `squre` in `task[1]`"),
        "{err}"
    );
    // A `nan` as a whole value, even of a key a task must have, hides nothing either.
    let path = Path::new("tests/fixtures/bad/nan_as_a_whole_value_hides_nothing.toml");
    let output = runjobs().arg("validate").arg(path).output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("due to 5 previous errors"), "{err}");
    for said in [
        "unknown builtin `sqare`",
        "unknown function `squre` in `task[0]`",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    // Every message of every bad fixture names a task by its TOML path, 0-based, as the
    // `key:` lines and the schema do; none counts tasks from 1.
    for path in tomls("tests/fixtures/bad") {
        let output = runjobs().arg("validate").arg(&path).output().unwrap();
        let err = stderr(&output);
        assert!(!err.contains("[[task]]` #"), "{}:\n{err}", path.display());
        for diagnostic in err.split("\n\n") {
            // A message about the task it points at says "in `task[N]`" or "of `task[N]`"
            // (another task it mentions may have another index).
            let first = diagnostic.lines().next().unwrap_or_default();
            let Some(named) = [" in `task[", " of `task["]
                .iter()
                .find_map(|place| first.split(place).nth(1))
                .and_then(|rest| rest.split(']').next())
            else {
                continue;
            };
            let key = diagnostic
                .lines()
                .find_map(|l| l.trim().strip_prefix("= key: "));
            if let Some(key) = key.filter(|k| k.starts_with("task[")) {
                assert!(
                    key.starts_with(&format!("task[{named}]")),
                    "{}: the message and its key count tasks differently:\n{diagnostic}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn good_fixtures_and_shipped_jobs_validate() {
    let mut files = tomls("tests/fixtures/good");
    assert!(files.len() >= 6, "the good fixtures are missing");
    files.extend(tomls("jobs"));
    for path in files {
        let output = runjobs()
            .arg("validate")
            .arg(&path)
            .output()
            .expect("runjobs runs");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{}:\n{err}", path.display());
        assert!(!err.contains("error"), "{}:\n{err}", path.display());
    }
}

#[test]
fn validate_reports_every_bad_file_given() {
    let output = runjobs()
        .args(["validate", "tests/fixtures/good/minimal.toml"])
        .args([
            "tests/fixtures/bad/no_task.toml",
            "tests/fixtures/bad/workers_zero.toml",
        ])
        .output()
        .expect("runjobs runs");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("could not load `tests/fixtures/bad/no_task.toml`"),
        "{err}"
    );
    assert!(
        err.contains("could not load `tests/fixtures/bad/workers_zero.toml`"),
        "{err}"
    );
    assert!(
        !err.contains("could not load `tests/fixtures/good/minimal.toml`"),
        "{err}"
    );
}

#[test]
fn missing_job_file_exits_2_naming_it() {
    let output = runjobs()
        .args(["validate", "jobs/no-such-job.toml"])
        .output()
        .expect("runs");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("jobs/no-such-job.toml"), "{err}");
}

#[test]
fn schema_prints_the_shipped_schema_byte_for_byte() {
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/job.schema.json"))
            .expect("schemas/job.schema.json is readable");
    let output = runjobs().arg("schema").output().expect("runjobs runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        output.stdout == shipped,
        "`runjobs schema` differs from schemas/job.schema.json"
    );
}

#[test]
fn output_flag_placeholders_and_a_zero_timeout_are_bad_command_lines() {
    use crate::util::{stderr, write};
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "s.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    let bad_output = dir.path().join("res/{job}-{nope}.json");
    let output = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&bad_output)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unknown placeholder `{nope}`"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("res").exists(), "nothing ran");

    let output = runjobs()
        .arg(&job)
        .args(["--timeout", "0s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("zero"), "{}", stderr(&output));
    assert!(!dir.path().join("out").exists(), "nothing ran");
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definitions() {
    let subcommands = [
        "run",
        "validate",
        "schema",
        "functions",
        "report",
        "crontab",
        "status",
        "completions",
        "man",
    ];
    let flags = [
        "--workers",
        "--output",
        "--format",
        "--timeout",
        "--dry-run",
        "--progress",
        "--quiet",
        "--fail-fast",
        "--resume",
        "--no-journal",
    ];
    for shell in ["bash", "fish", "zsh", "elvish", "powershell"] {
        let output = runjobs().args(["completions", shell]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&output.stdout);
        if shell == "bash" || shell == "fish" {
            for word in subcommands {
                assert!(text.contains(word), "{shell} completions lack `{word}`");
            }
            for flag in flags {
                let bare = flag.trim_start_matches('-');
                assert!(text.contains(bare), "{shell} completions lack `{flag}`");
            }
        }
        assert!(
            !text.contains("__worker"),
            "{shell}: internal modes stay hidden"
        );
    }
    let page = runjobs().arg("man").output().unwrap();
    assert_eq!(page.status.code(), Some(0));
    // The signals a run answers, and the exit codes, are in `--help` and the man page alike.
    let help = runjobs().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let roff = String::from_utf8_lossy(&page.stdout).into_owned();
    for text in [&help, &roff] {
        for word in [
            "SIGHUP",
            "nohup",
            "interrupted by SIGINT, SIGTERM or SIGHUP",
        ] {
            assert!(text.contains(word), "no `{word}` in:\n{text}");
        }
    }
    assert!(
        String::from_utf8_lossy(&page.stdout).starts_with(".ie"),
        "roff"
    );
    let groff = std::process::Command::new("groff")
        // Plain text: no overstriking or escape sequences for bold and underline.
        .args(["-k", "-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut groff) = groff else {
        eprintln!("skipped rendering the man page: no groff on this machine");
        return;
    };
    use std::io::Write as _;
    groff.stdin.take().unwrap().write_all(&page.stdout).unwrap();
    let rendered = groff.wait_with_output().unwrap();
    assert!(rendered.status.success());
    assert!(
        rendered.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        text.contains("runjobs") && text.contains("workers"),
        "{text}"
    );
}

#[test]
fn taplo_validates_shipped_jobs_against_the_schema_and_rejects_a_bad_one() {
    use crate::util::repo;
    let taplo = std::env::var("TAPLO").unwrap_or_else(|_| "taplo".into());
    let check = |files: &[PathBuf]| {
        std::process::Command::new(&taplo)
            .arg("check")
            .args(files)
            .current_dir(repo())
            .output()
    };
    let jobs: Vec<PathBuf> = std::fs::read_dir(repo().join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    let Ok(good) = check(&jobs) else {
        eprintln!("skipped: no taplo on this machine (`npm install -g @taplo/cli`)");
        return;
    };
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = check(&[repo().join("tests/fixtures/bad/misspelled_timeout.toml")]).unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("timout")
            || String::from_utf8_lossy(&bad.stderr).contains("timout")
    );
}

/// The shipped schema, checked by a real validator (check-jsonschema, as an editor's JSON
/// Schema support would): every good fixture and shipped job passes, every bad fixture
/// fails unless `tests/fixtures/schema-manifest.toml` says only runjobs can reject it (and
/// those do pass: the manifest is exact).
#[test]
fn check_jsonschema_agrees_with_the_fixture_manifest() {
    use crate::util::repo;
    let python = std::env::var_os("RUNJOBS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".ci/venv/bin/python"));
    let usable = std::process::Command::new(&python)
        .args(["-m", "check_jsonschema", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        assert!(
            std::env::var_os("RUNJOBS_REQUIRE_PYTOOLS").is_none(),
            "RUNJOBS_REQUIRE_PYTOOLS is set but {} has no check_jsonschema",
            python.display()
        );
        eprintln!("skipped: no check-jsonschema (pip install check-jsonschema into .ci/venv)");
        return;
    }
    let fixtures = repo().join("tests/fixtures");
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(fixtures.join("schema-manifest.toml")).unwrap())
            .unwrap();
    let accepted_bad: Vec<&String> = manifest["schema_accepts"]
        .as_table()
        .unwrap()
        .keys()
        .collect();
    let tomls = |dir: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            // A file that is not UTF-8 is no TOML to any tool (check-jsonschema stops on it).
            .filter(|p| std::fs::read_to_string(p).is_ok())
            .collect();
        files.sort();
        files
    };
    let mut files = tomls(&fixtures.join("bad"));
    files.extend(tomls(&fixtures.join("good")));
    files.extend(tomls(&repo().join("jobs")));
    files.extend(tomls(&repo().join("bench/jobs")));
    let output = std::process::Command::new(&python)
        .args(["-m", "check_jsonschema", "-o", "json", "--schemafile"])
        .arg(repo().join("schemas/job.schema.json"))
        .args(&files)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    // A file that is not TOML at all is a parse error, rejected too.
    let rejected: std::collections::HashSet<PathBuf> = ["errors", "parse_errors"]
        .iter()
        .filter_map(|key| report[key].as_array())
        .flatten()
        .filter_map(|e| e["filename"].as_str())
        .map(PathBuf::from)
        .collect();
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&fixtures).unwrap_or(file);
        let shown = relative.to_string_lossy().into_owned();
        let should_reject = shown.starts_with("bad/") && !accepted_bad.contains(&&shown);
        if rejected.contains(file) != should_reject {
            wrong.push(format!(
                "{shown}: the schema {} it",
                if should_reject { "accepts" } else { "rejects" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}\n{report:#}");
    for listed in &accepted_bad {
        assert!(
            fixtures.join(listed).is_file(),
            "the manifest names no file {listed}"
        );
    }
}
