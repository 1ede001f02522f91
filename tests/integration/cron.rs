//! A cron user's day: `crontab` lines, one results file a run with `keep`, the `latest` link,
//! the run index (locked runs too), and hooks.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

#[test]
fn crontab_prints_a_line_per_scheduled_job_with_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs dir");
    write(
        &jobs,
        "nightly.toml",
        "description = \"Squares at night\"\nschedule = \"0 3 * * *\"\n[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    write(
        &jobs,
        "often.toml",
        "schedule = \"*/15 * * * *\"\n[output]\npath = \"../out/{job}.json\"\n[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    write(
        &jobs,
        "manual.toml",
        "[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    let output = runjobs().arg("crontab").arg(&jobs).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(text.contains("# nightly: Squares at night"), "{text}");
    let nightly = lines.iter().find(|l| l.contains("nightly.toml")).unwrap();
    let fields: Vec<&str> = nightly.split_whitespace().collect();
    assert_eq!(fields[..5], ["0", "3", "*", "*", "*"]);
    // The log's folder is made before the shell opens the log for `tee`.
    assert_eq!(fields[5], "mkdir", "{nightly}");
    assert_eq!(fields[6], "-p", "{nightly}");
    let binary = nightly.split("; ").nth(1).unwrap_or_default();
    let binary: Vec<&str> = binary.split_whitespace().collect();
    assert!(
        binary[0].starts_with('/') && binary[0].ends_with("runjobs"),
        "{nightly}"
    );
    assert_eq!(binary[1], "-q");
    // The folder has a space: the path is quoted for the shell.
    let quoted = format!("'{}'", jobs.join("nightly.toml").display());
    assert!(nightly.contains(&quoted), "{nightly}");
    let often = lines.iter().find(|l| l.contains("often.toml")).unwrap();
    assert!(
        often.starts_with(&format!(
            "*/15 * * * * mkdir -p {}; ",
            dir.path().join("out").display()
        )),
        "{often}"
    );
    assert!(
        often.ends_with(&format!(
            "| tee -a {}",
            dir.path().join("out/often.cron.log").display()
        )),
        "{often}"
    );
    assert!(
        stderr(&output).contains("manual.toml"),
        "{}",
        stderr(&output)
    );

    // A bad job is an error at its line and column, and no line is printed.
    write(
        &jobs,
        "bad.toml",
        "schedule = \"61 * * * *\"\n[[task]]\nfunction = \"square\"\ninputs = [1]\n",
    );
    let output = runjobs().arg("crontab").arg(&jobs).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("bad.toml:1:12"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
}

/// The crontab line of `job` without its schedule: what cron hands to `sh -c`.
fn cron_command(job: &Path) -> String {
    let output = runjobs().arg("crontab").arg(job).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap_or_default();
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "{text}");
    fields[5].to_owned()
}

#[test]
fn the_first_cron_run_on_a_fresh_checkout_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "first.toml",
        "schedule = \"0 3 * * *\"\n[output]\npath = \"out/{job}.json\"\n\
         [functions.f]\ncommand = [\"sh\", \"-c\", \"[ $1 = 2 ] && exit 7; echo $1\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = [1, 2]\n",
    );
    assert!(!dir.path().join("out").exists());
    let command = cron_command(&job);
    // Cron runs the line with `sh -c` in `$HOME`, with no terminal.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stderr(&output), "", "{command}");
    let mailed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(mailed.contains("exit code 7"), "{mailed}");
    let log = std::fs::read_to_string(dir.path().join("out/first.cron.log"))
        .unwrap_or_else(|e| panic!("no log after the first run ({e}): {command}"));
    assert_eq!(log, mailed, "the log holds what cron mailed");
    assert_eq!(
        read_json(&dir.path().join("out/first.json"))["summary"]["failed"],
        1
    );

    // A run that succeeds mails nothing and logs nothing; the log keeps the first run.
    std::fs::write(
        &job,
        std::fs::read_to_string(&job)
            .unwrap()
            .replace("exit 7", "true"),
    )
    .unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .output()
        .unwrap();
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "{output:?}"
    );
    let again = std::fs::read_to_string(dir.path().join("out/first.cron.log")).unwrap();
    assert_eq!(again, log);
}

/// A job writing `out/{job}-{timestamp}.json`, keeping `keep` of them.
fn history_job(dir: &Path, keep: &str, extra: &str) -> std::path::PathBuf {
    write(
        dir,
        "nightly.toml",
        &format!(
            "[output]\npath = \"out/{{job}}-{{timestamp}}.json\"\n{keep}\n{extra}\
             [functions.f]\ncommand = [\"sh\", \"-c\", \"[ -e slow.flag ] && sleep 2; [ -e fail.flag ] && exit 1; echo $1\", \"sh\", \"{{input}}\"]\n\
             [[task]]\nfunction = \"f\"\ninputs = [1, 2]\n"
        ),
    )
}

fn run_once(job: &Path) -> std::process::Output {
    let output = runjobs().arg(job).output().unwrap();
    // One file a second: `{timestamp}` counts seconds.
    std::thread::sleep(Duration::from_millis(1050));
    output
}

#[test]
fn keep_leaves_the_newest_runs_a_latest_link_and_an_index_of_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let job = history_job(dir.path(), "keep = 2", "");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Not the template's: never removed.
    write(&out, "nightly-notes.json", "{}");
    write(&out, "nightly-20200101T000000Z.txt", "");
    let mut written = Vec::new();
    for _ in 0..4 {
        let output = run_once(&job);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let said = stderr(&output);
        written.push(said.rsplit("results in ").next().unwrap().trim().to_owned());
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let kept: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.starts_with("nightly-2026") || n.starts_with("nightly-20") && n.ends_with("Z.json")
        })
        .collect();
    assert_eq!(kept.len(), 2, "{names:?}");
    for newest in &written[2..] {
        assert!(Path::new(newest).exists(), "{newest} was kept: {names:?}");
    }
    assert!(names.contains(&"nightly-notes.json".to_owned()));
    assert!(names.contains(&"nightly-20200101T000000Z.txt".to_owned()));
    // `latest` names the newest run.
    let latest = out.join("nightly-latest.json");
    assert_eq!(
        std::fs::canonicalize(&latest).unwrap(),
        std::fs::canonicalize(&written[3]).unwrap()
    );
    let (code, text) = report_text(&[latest.as_os_str()]);
    assert_eq!(code, Some(0));
    assert!(text.contains("2 items: 2 ok"), "{text}");

    // A run the lock refuses is in the index too: one run is still going (slow.flag).
    write(dir.path(), "slow.flag", "");
    let mut going = spawn_marked(&job, None, &marker("keeplock"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while children_matching(going.id(), "sh").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first run never started its item"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = runjobs().arg(&job).output().unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    going.wait().unwrap();
    std::fs::remove_file(dir.path().join("slow.flag")).unwrap();

    // Five runs (the slow one too) and the refused one, although `keep` left two files.
    let index = out.join("nightly.history.jsonl");
    let (code, text) = report_text(&[index.as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    let runs: Vec<&str> = text.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(runs.len(), 6, "{text}");
    let locked: Vec<&&str> = runs.iter().filter(|r| r.contains("locked")).collect();
    assert_eq!(locked.len(), 1, "{text}");
    assert!(locked[0].contains("another run held the lock"), "{text}");
    assert_eq!(
        runs.iter().filter(|r| r.contains("2 items: 2 ok")).count(),
        5,
        "{text}"
    );
    // The folder reads the same, through its index.
    let (code, folder) = report_text(&[out.as_os_str()]);
    assert_eq!(code, Some(0));
    assert_eq!(
        folder.lines().filter(|l| l.starts_with("20")).count(),
        6,
        "{folder}"
    );
}

fn report_text(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = runjobs().arg("report").args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(&output),
    )
}

#[test]
fn hooks_run_with_the_runs_environment_time_out_and_never_change_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = "[hooks]\non_start = [\"sh\", \"-c\", \"echo start $RUNJOBS_STATUS >> hooks.log\"]\n\
        on_success = [\"sh\", \"-c\", \"echo success {job} $RUNJOBS_STATUS $RUNJOBS_OK >> hooks.log; exit 7\"]\n\
        on_failure = [\"sh\", \"-c\", \"echo failure $RUNJOBS_JOB $RUNJOBS_STATUS $RUNJOBS_FAILED $RUNJOBS_RESULTS >> hooks.log; sleep 30\"]\n\
        timeout = \"1s\"\n";
    let job = history_job(dir.path(), "", hooks);
    let log = || std::fs::read_to_string(dir.path().join("hooks.log")).unwrap_or_default();

    let output = runjobs().arg(&job).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "a failing hook: the run's code stands"
    );
    assert!(
        stderr(&output).contains("hook `on_success`") && stderr(&output).contains("exit code 7")
    );
    assert_eq!(log(), "start running\nsuccess nightly ok 2\n");

    write(dir.path(), "fail.flag", "");
    let started = Instant::now();
    let marker = marker("hooks");
    let output = runjobs()
        .arg(&job)
        .env("RUNJOBS_TEST_MARKER", &marker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the hook was stopped at its timeout"
    );
    assert!(
        stderr(&output).contains("stopped after its timeout of 1s"),
        "{}",
        stderr(&output)
    );
    let last = log().lines().last().unwrap().to_owned();
    let fields: Vec<&str> = last.split(' ').collect();
    assert_eq!(fields[..4], ["failure", "nightly", "failed", "2"], "{last}");
    let doc: Value = read_json(Path::new(fields[4]));
    assert_eq!(doc["status"], "failed");
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}
