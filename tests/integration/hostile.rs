//! Hostile surroundings: a stderr that is closed or goes away mid-run. runjobs drops what it
//! would print there, finishes, writes its results, honours signals and leaves no process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A job with builtin, Python and command items that all print to stderr.
fn noisy_job(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "noisy.py",
        "import sys\ndef f(x):\n    print('python says', x)\n    print('and on stderr', x, file=sys.stderr)\n    return x\n",
    );
    write(
        dir,
        "noisy.toml",
        r#"workers = 2
[functions.py]
python = "noisy.py:f"
[functions.sh]
command = ["sh", "-c", "echo err $1 >&2; echo $1", "sh", "{input}"]
[[task]]
function = "print_number"
inputs = { range = [0, 2000] }
[[task]]
function = "py"
inputs = { range = [0, 300] }
[[task]]
function = "sh"
inputs = { range = [0, 40] }
"#,
    )
}

/// Waits for `child` up to `limit`; kills it and fails the test if it hangs.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runjobs hung with its stderr closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The run wrote every result and left no process behind.
fn assert_complete_and_gone(out: &Path, marker: &str) {
    assert_complete(out);
    assert_eq!(
        wait_until_gone(marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

/// Starts `cmd` with a stderr whose reader is already gone.
fn spawn_with_closed_stderr(cmd: &mut Command) -> Child {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stderr(Stdio::from(writer)).spawn().unwrap()
}

fn assert_complete(out: &Path) {
    let doc = read_json(out);
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["summary"]["total"], 2000 + 300 + 40);
    assert_eq!(doc["summary"]["ok"], 2000 + 300 + 40);
    assert_eq!(outputs(&doc, 2)[39], "39");
}

#[test]
fn a_closed_stderr_neither_hangs_nor_panics_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let job = noisy_job(dir.path());
    let out = dir.path().join("out.json");
    for progress in ["never", "always"] {
        let marker = marker(&format!("closedstderr-{progress}"));
        let mut child = spawn_with_closed_stderr(
            Command::new(BIN)
                .arg(&job)
                .arg("-o")
                .arg(&out)
                .args(["--progress", progress])
                .env("RUNJOBS_TEST_MARKER", &marker),
        );
        let code = wait_bounded(&mut child, Duration::from_secs(60));
        assert_eq!(
            code,
            Some(0),
            "--progress {progress}: no panic (101), no error"
        );
        assert_complete_and_gone(&out, &marker);
    }
}

#[test]
fn a_stderr_reader_that_goes_away_mid_run_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let job = noisy_job(dir.path());
    let out = dir.path().join("out.json");
    let marker = marker("headstderr");
    let script = format!(
        "'{BIN}' '{}' -o '{}' 2>&1 >/dev/null | head -c 20 >/dev/null; echo \"rc=${{PIPESTATUS[0]}}\"",
        job.display(),
        out.display()
    );
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .env("RUNJOBS_TEST_MARKER", &marker)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, Duration::from_secs(60));
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut said).unwrap();
    assert_eq!(said.trim(), "rc=0");
    assert_complete_and_gone(&out, &marker);
}

#[test]
fn sigterm_stops_a_run_whose_stderr_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "workers = 2\nkill_grace = \"200ms\"\n[[task]]\nfunction = \"sleep\"\ninputs = [0.01, 30, 30, 30]\n",
    );
    let out = dir.path().join("out.json");
    let marker = marker("closedstderr-term");
    let mut child = spawn_with_closed_stderr(
        Command::new(BIN)
            .arg(&job)
            .arg("-o")
            .arg(&out)
            .env("RUNJOBS_TEST_MARKER", &marker),
    );
    wait_for_workers(child.id(), 2);
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_bounded(&mut child, Duration::from_secs(10)), Some(3));
    let doc = read_json(&out);
    assert_eq!(doc["status"], "interrupted");
    assert_eq!(results(&doc, 0)[0]["status"], "ok");
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

#[test]
fn results_on_a_stdout_that_closes_fail_with_exit_1_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let job = noisy_job(dir.path());
    // `head` leaves after five lines of a results file far bigger than a pipe holds, so
    // the results cannot be written whole: exit 1 (SPEC §3), never a panic's 101.
    let script = format!(
        "for i in 1 2 3 4 5; do '{BIN}' '{}' -o - -q 2>&1 | head -5 >/dev/null; echo ${{PIPESTATUS[0]}}; done",
        job.display()
    );
    let output = Command::new("bash").args(["-c", &script]).output().unwrap();
    let codes = String::from_utf8_lossy(&output.stdout);
    assert_eq!(codes.split_whitespace().collect::<Vec<_>>(), ["1"; 5]);
}

/// Items whose input and stderr hold terminal escapes (a colour, a title, a clipboard write,
/// a carriage return): what runjobs prints about them shows escapes, never the raw bytes;
/// the results file keeps the raw text.
#[test]
fn what_runjobs_prints_about_items_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.loud]\n\
         command = [\"sh\", \"-c\", \"printf '\\\\033]52;c;cHduZWQ=\\\\007\\\\033[31mred\\\\rover' >&2; exit 1\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"loud\"\ninputs = [\"\\u001b[2Jclear\", \"plain\"]\n",
    );
    let out = dir.path().join("out.json");
    let run = runjobs()
        .arg(&job)
        .arg("-q")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let said = stderr(&run);
    let raw_bytes = |text: &str| {
        text.chars()
            .any(|c| c == '\u{1b}' || c == '\r' || c == '\u{7}')
    };
    // The relayed stderr is the program's own (raw, as GNU parallel relays it); the failure
    // list runjobs prints is not.
    let failures: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("failed: loud["))
        .collect();
    assert_eq!(failures.len(), 2, "{said}");
    for line in &failures {
        assert!(!raw_bytes(line), "{line:?}");
    }
    assert!(
        failures.iter().any(|l| l.contains("\\x1b]52;c;")),
        "{failures:?}"
    );
    let report = runjobs().arg("report").arg(&out).output().unwrap();
    let shown = String::from_utf8_lossy(&report.stdout);
    assert!(!raw_bytes(&shown), "{shown:?}");
    assert!(
        shown.contains("\\x1b[2Jclear") && shown.contains("\\x1b[31mred\\rover"),
        "{shown}"
    );
    let dry = runjobs().arg(&job).arg("--dry-run").output().unwrap();
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(
        !raw_bytes(&plan) && plan.contains("\\x1b[2Jclear"),
        "{plan:?}"
    );
    // The results keep what the program wrote.
    let doc = read_json(&out);
    let error = doc["tasks"][0]["results"][0]["error"].as_str().unwrap();
    assert!(error.contains("\u{1b}[31mred\rover"), "{error:?}");
    assert_eq!(doc["tasks"][0]["results"][0]["input"], "\u{1b}[2Jclear");
}
