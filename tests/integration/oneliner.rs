//! `runjobs exec`, the one-liner form: GNU parallel's placeholders and input forms
//! (against its documented outputs, and live when `parallel` is installed), output in input
//! order in bounded memory, no input ever reaching a shell, `--save` round trips, exit codes,
//! and no process left behind.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, BIN, read_json, runjobs, stderr};

/// `runjobs exec ARGS` in `dir` with `stdin`: (exit code, stdout, stderr).
fn exec_in(dir: &Path, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let out = runjobs()
        .current_dir(dir)
        .arg("exec")
        .args(args)
        .write_stdin(stdin.to_vec())
        .output()
        .unwrap();
    let code = out.status.code().expect("exited");
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
    )
}

fn exec(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    exec_in(dir.path(), args, b"")
}

/// GNU parallel's stdout for the same words (`parallel -k ARGS`), when it is installed.
fn parallel(dir: &Path, args: &[&str], stdin: &[u8]) -> Option<String> {
    let mut child = Command::new("parallel")
        .current_dir(dir)
        .arg("-k")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks `runjobs exec ARGS` against `expected` (parallel's documented output) and, when
/// parallel is installed, against parallel itself.
fn like_parallel(args: &[&str], stdin: &[u8], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = exec_in(dir.path(), args, stdin);
    assert_eq!((code, out.as_str()), (0, expected), "{args:?}\n{err}");
    if let Some(live) = parallel(dir.path(), args, stdin) {
        assert_eq!(out, live, "GNU parallel differs for {args:?}");
    }
}

#[test]
fn output_is_in_input_order_whatever_order_items_finish_in() {
    let started = Instant::now();
    let (code, out, err) = exec(&[
        "-j3",
        "sh",
        "-c",
        "sleep \"$1\"; echo \"$1\"",
        "_",
        ":::",
        "0.6",
        "0.3",
        "0",
    ]);
    assert_eq!((code, out.as_str()), (0, "0.6\n0.3\n0\n"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        err.is_empty(),
        "nothing of runjobs' own off a terminal: {err}"
    );
}

#[test]
fn placeholders_mean_what_they_mean_for_gnu_parallel() {
    // parallel's man page: {} the input, {.} without extension, {/} basename, {//} folder,
    // {/.} basename without extension, {#} the job's number.
    like_parallel(
        &[
            "echo",
            "{}",
            "{.}",
            "{/}",
            "{//}",
            "{/.}",
            "{#}",
            ":::",
            "a/b.c/d.tar.gz",
            "x",
            "a b",
        ],
        b"",
        "a/b.c/d.tar.gz a/b.c/d.tar d.tar.gz a/b.c d.tar 1\n\
         x x x . x 2\n\
         a b a b a b . a b 3\n",
    );
    // A difference, documented: a name that is all extension keeps it (as `{input.ext}` has
    // none); parallel's `{.}` and `{/.}` of `.bashrc` are empty.
    let (code, out, _) = exec(&["echo", "{.}", "{/.}", ":::", ".bashrc"]);
    assert_eq!((code, out.as_str()), (0, ".bashrc .bashrc\n"));
    // With no replacement string, the input is the last argument.
    like_parallel(&["echo", "-n", "in:"], b"p\nq\n", "in: pin: q");
    // Braces that are no replacement string are literal (`{{}}` is a brace around `{}`).
    like_parallel(
        &["echo", "{x}", "{{}}", "{print NR}", ":::", "q"],
        b"",
        "{x} {q} {print NR}\n",
    );
}

#[test]
fn groups_combine_with_the_last_varying_fastest_and_are_named_by_number() {
    like_parallel(
        &["echo", ":::", "a", "b", ":::", "1", "2"],
        b"",
        "a 1\na 2\nb 1\nb 2\n",
    );
    like_parallel(
        &["echo", "{2}-{1}", "{#}", ":::", "a", "b", ":::", "1", "2"],
        b"",
        "1-a 1\n2-a 2\n1-b 3\n2-b 4\n",
    );
    like_parallel(
        &["echo", "[{}]", ":::", "a", "b", ":::", "1"],
        b"",
        "[a 1]\n[b 1]\n",
    );
    // Ten groups keep their order ("10" is not sorted before "2").
    let mut ten = vec!["echo", "{10}", "{2}", "{1}"];
    let groups: Vec<String> = (1..=10).map(|g| format!("g{g}")).collect();
    for g in &groups {
        ten.extend([":::", g.as_str()]);
    }
    ten.push("h10");
    like_parallel(&ten, b"", "g10 g2 g1\nh10 g2 g1\n");
    like_parallel(
        &["--tag", "echo", "X", ":::", "a", "b", ":::", "1"],
        b"",
        "a 1\tX a 1\nb 1\tX b 1\n",
    );
}

#[test]
fn inputs_come_from_files_standard_input_and_nul_separated_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    util::write(dir.path(), "in.txt", "one\ntwo words\nthree\n");
    let (code, out, err) = exec_in(dir.path(), &["echo", "[{}]", "::::", "in.txt"], b"");
    assert_eq!(
        (code, out.as_str()),
        (0, "[one]\n[two words]\n[three]\n"),
        "{err}"
    );
    if let Some(live) = parallel(dir.path(), &["echo", "[{}]", "::::", "in.txt"], b"") {
        assert_eq!(out, live);
    }
    like_parallel(&["echo", "[{}]"], b"a\nb c\n", "[a]\n[b c]\n");
    like_parallel(&["echo", "[{}]", "::::", "-"], b"a\n", "[a]\n");
    like_parallel(&["-0", "echo", "[{}]"], b"a\0b\nc\0", "[a]\n[b\nc]\n");
    like_parallel(&["echo", ":::", "x", "::::", "-"], b"1\n2\n", "x 1\nx 2\n");
    // A difference, documented: a blank line is no input here (as for `lines`), where
    // parallel runs the command with an empty argument.
    let (code, out, _) = exec_in(dir.path(), &["echo", "[{}]"], b"a\n\n  \nb\n");
    assert_eq!((code, out.as_str()), (0, "[a]\n[b]\n"));
}

#[test]
fn standard_input_is_streamed_items_start_before_it_ends() {
    let mut child = Command::new(BIN)
        .args(["exec", "echo", "got"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    // Standard input is still open: the first item ran anyway.
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"got first\n");
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got second\n");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn no_input_ever_reaches_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let nasty = [
        "$(touch made-by-dollar)",
        "`touch made-by-backtick`",
        "a; touch made-by-semicolon",
        "b\ntouch made-by-newline",
        "c | touch made-by-pipe",
    ];
    let mut args = vec!["printf", "<%s>\\n", ":::"];
    args.extend(nasty);
    let (code, out, err) = exec_in(dir.path(), &args, b"");
    let expected: String = nasty.iter().map(|n| format!("<{n}>\n")).collect();
    assert_eq!((code, out.as_str()), (0, expected.as_str()), "{err}");
    // The same from standard input, and into a `--shell` script as $1.
    let (code, out, _) = exec_in(
        dir.path(),
        &["printf", "<%s>\\n"],
        b"$(touch made-by-stdin)\n",
    );
    assert_eq!((code, out.as_str()), (0, "<$(touch made-by-stdin)>\n"));
    let script = "printf '[%s]\\n' \"$1\"";
    let (code, out, err) = exec_in(
        dir.path(),
        &["--shell", script, ":::", nasty[0], nasty[2]],
        b"",
    );
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "[$(touch made-by-dollar)]\n[a; touch made-by-semicolon]\n"
        ),
        "{err}"
    );
    let made = names_in(dir.path());
    assert!(made.is_empty(), "a shell ran an input: {made:?}");
}

#[test]
fn shell_scripts_get_the_input_as_dollar_one_and_refuse_placeholders() {
    let (code, out, err) = exec(&["--shell", "echo \"<$1>\" | tr a-z A-Z", ":::", "a b", "c"]);
    assert_eq!((code, out.as_str()), (0, "<A B>\n<C>\n"), "{err}");
    let (code, out, err) = exec(&["--shell", "echo {}", ":::", "a"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("write \"$1\" instead"), "{err}");
}

#[test]
fn saved_job_files_validate_and_reproduce_the_outputs() {
    let forms: [(&[&str], &[u8]); 4] = [
        (&["echo", "item", ":::", "a", "b c", "d"], b""),
        (&["echo", "{2}-{1}", ":::", "x", "y", ":::", "1", "2"], b""),
        (&["wc", "-l", "::::", "list.txt"], b""),
        (&["echo", "from stdin:"], b"p\nq r\n"),
    ];
    for (n, (form, stdin)) in forms.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        util::write(dir.path(), "list.txt", "list.txt\n");
        let mut args = vec!["-j2", "--timeout", "20s", "-o", "one.json"];
        args.extend(form);
        let (code, printed, err) = exec_in(dir.path(), &args, stdin);
        assert_eq!(code, 0, "form {n}: {err}");
        // Saved in another folder: it must still run here, on the files named here.
        std::fs::create_dir(dir.path().join("jobs")).unwrap();
        let mut save = vec!["--save", "jobs/saved.toml"];
        save.extend(&args);
        let (code, out, err) = exec_in(dir.path(), &save, stdin);
        assert_eq!(
            (code, out.as_str()),
            (0, ""),
            "form {n}: --save runs nothing: {err}"
        );
        let saved = std::fs::read_to_string(dir.path().join("jobs/saved.toml")).unwrap();
        assert!(saved.starts_with("#:schema "), "{saved}");
        assert!(
            saved.contains("# Written by `runjobs exec --save` from:"),
            "{saved}"
        );
        let job = dir.path().join("jobs/saved.toml");
        let what = format!("form {n}\n{saved}");
        succeeds(runjobs().arg("validate").arg(&job), &what);
        std::fs::remove_file(dir.path().join("one.json")).unwrap();
        // Run from elsewhere, as cron would.
        succeeds(runjobs().current_dir("/").arg(&job), &what);
        let again = read_json(&dir.path().join("one.json"));
        let outputs: Vec<String> = util::outputs(&again, 0)
            .iter()
            .map(|o| o.as_str().unwrap().to_owned() + "\n")
            .collect();
        assert_eq!(
            outputs.concat(),
            printed,
            "form {n}: the saved file's outputs\n{saved}"
        );
    }
}

/// The names of the files in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Runs `cmd`, which must exit 0.
fn succeeds(cmd: &mut assert_cmd::Command, what: &str) {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
}

#[test]
fn every_job_flag_is_saved_as_its_job_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--save",
        "all.toml",
        "-j3",
        "--timeout",
        "1m 30s",
        "--retries",
        "2",
        "--memfree",
        "1MiB",
        "--load",
        "8",
        "--fail-fast",
        "-o",
        "out/r.jsonl",
        "--format",
        "jsonl",
        "--",
        "wc",
        "-c",
        ":::",
        "a",
    ];
    let (code, _, err) = exec_in(dir.path(), &args, b"");
    assert_eq!(code, 0, "{err}");
    let saved = std::fs::read_to_string(dir.path().join("all.toml")).unwrap();
    for key in [
        "workers = 3\n",
        "timeout = \"1m 30s\"\n",
        "retries = 2\n",
        "max_failures = 0",
        "[admit]\nmemfree = \"1MiB\"\nload = 8.0\n",
        "[output]\npath = \"out/r.jsonl\"\nformat = \"jsonl\"\n",
        "[functions.wc]\ncommand = [\"wc\", \"-c\", \"{input}\"]\n",
        "inputs = [\"a\"]\n",
    ] {
        assert!(saved.contains(key), "`{key}` in\n{saved}");
    }
    succeeds(
        runjobs().arg("validate").arg(dir.path().join("all.toml")),
        &saved,
    );
}

#[test]
fn dry_runs_print_the_plan_or_every_argv_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--dry-run=all", "touch", "made-{#}", ":::", "a", "b"];
    let (code, out, err) = exec_in(dir.path(), &args, b"");
    assert_eq!(
        (code, out.as_str()),
        (0, "touch #0 touch made-1\ntouch #1 touch made-2\n"),
        "{err}"
    );
    let (code, out, _) = exec_in(dir.path(), &["--dry-run", "touch", "x", ":::", "a"], b"");
    assert_eq!(code, 0);
    assert!(out.contains("over 1 item"), "{out}");
    let left = names_in(dir.path());
    assert!(left.is_empty(), "nothing ran: {left:?}");
}

#[test]
fn save_never_overwrites_without_force_and_refuses_large_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    util::write(dir.path(), "job.toml", "keep me");
    let (code, _, err) = exec_in(dir.path(), &["--save", "job.toml", "echo", ":::", "a"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("`--force` replaces it"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("job.toml")).unwrap(),
        "keep me"
    );
    let (code, _, err) = exec_in(
        dir.path(),
        &["--save", "job.toml", "--force", "echo", ":::", "a"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(dir.path().join("job.toml"))
            .unwrap()
            .contains("[functions.echo]")
    );
    let many: String = (0..10_001).map(|i| format!("{i}\n")).collect();
    let (code, _, err) = exec_in(dir.path(), &["--save", "big.toml", "echo"], many.as_bytes());
    assert_eq!(code, 2);
    assert!(err.contains(":::: FILE"), "{err}");
    assert!(!dir.path().join("big.toml").exists());
}

#[test]
fn empty_input_runs_nothing_and_exits_0() {
    for (args, stdin) in [
        (&["echo", "ran"][..], &b""[..]),
        (&["echo", "ran", ":::"], b""),
        (&["echo"], b"\n\n"),
    ] {
        let (code, out, err) = {
            let dir = tempfile::tempdir().unwrap();
            exec_in(dir.path(), args, stdin)
        };
        assert_eq!((code, out.as_str()), (0, ""), "{args:?}: {err}");
    }
}

#[test]
fn a_missing_command_is_a_bad_command_line_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = exec_in(
        dir.path(),
        &["-o", "r.json", "no-such-program-here", ":::", "a"],
        b"",
    );
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("`no-such-program-here`: no such command in PATH"),
        "{err}"
    );
    let (code, _, err) = exec_in(dir.path(), &["./nope.sh", ":::", "a"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("no such executable file"), "{err}");
    for (args, says) in [
        (&["echo", "{%}", ":::", "a"][..], "not supported"),
        (&["echo", "{3}", ":::", "a", ":::", "b"], "2 input groups"),
        (&["-o", "-", "echo", ":::", "a"], "name a file"),
        (
            &["echo", "::::", "missing.txt"],
            "cannot read the inputs file `missing.txt`",
        ),
    ] {
        let (code, out, err) = exec_in(dir.path(), args, b"");
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let left = names_in(dir.path());
    assert!(left.is_empty(), "nothing is written: {left:?}");
}

#[test]
fn failures_exit_1_with_the_summary_on_stderr_and_stdout_clean() {
    let (code, out, err) = exec(&["sh", "-c", "echo out-$1; exit $1", "_", ":::", "0", "3"]);
    assert_eq!((code, out.as_str()), (1, "out-0\nout-3\n"));
    assert!(err.contains("1 ok, 1 failed"), "{err}");
    assert!(
        err.contains("exit code 3") || err.contains("exited with 3"),
        "{err}"
    );
}

#[test]
fn without_o_no_file_is_written_and_one_liners_in_one_folder_do_not_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let slow = Command::new(BIN)
        .current_dir(dir.path())
        .args(["exec", "sleep", ":::", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = exec_in(dir.path(), &["sleep", ":::", "0"], b"");
    assert_eq!((code, out.as_str()), (0, ""), "not locked out: {err}");
    let slow = slow.wait_with_output().unwrap();
    assert_eq!(slow.status.code(), Some(0), "{}", stderr(&slow));
    let left = names_in(dir.path());
    assert!(left.is_empty(), "no results, journal or lock: {left:?}");
}

#[test]
fn with_o_the_results_file_is_written_and_resume_reruns_only_the_failed_items() {
    let dir = tempfile::tempdir().unwrap();
    let script = "[ \"$1\" != b ] || [ -e fixed ] || exit 4; echo \"$1\" >> ran; echo \"got $1\"";
    let args = ["-o", "r.json", "--shell", script, ":::", "a", "b", "c"];
    let (code, out, _) = exec_in(dir.path(), &args, b"");
    assert_eq!(
        (code, out.as_str()),
        (1, "got a\n\ngot c\n".replace("\n\n", "\n").as_str())
    );
    let doc = read_json(&dir.path().join("r.json"));
    assert_eq!(doc["summary"]["failed"], 1);
    util::write(dir.path(), "fixed", "");
    let mut resume = vec!["--resume", "r.json"];
    resume.extend(&args[2..]);
    let (code, out, err) = exec_in(dir.path(), &resume, b"");
    assert_eq!((code, out.as_str()), (0, "got a\ngot b\ngot c\n"), "{err}");
    let ran = std::fs::read_to_string(dir.path().join("ran")).unwrap();
    assert_eq!(ran, "a\nc\nb\n", "only b ran again");
    let doc = read_json(&dir.path().join("r.json"));
    assert_eq!(doc["summary"]["ok"], 3);
}

#[test]
fn a_retried_item_prints_only_its_last_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let script = "if [ -e tried ]; then echo second; else touch tried; echo first; exit 1; fi";
    let (code, out, err) = exec_in(
        dir.path(),
        &["--retries", "1", "--shell", script, ":::", "x"],
        b"",
    );
    assert_eq!((code, out.as_str()), (0, "second\n"), "{err}");
}

#[test]
fn tag_prefixes_stdout_and_stderr_lines_with_the_input() {
    let (code, out, err) = exec(&[
        "--tag",
        "sh",
        "-c",
        "echo o1; echo o2; echo e1 >&2",
        "_",
        ":::",
        "p",
    ]);
    assert_eq!((code, out.as_str()), (0, "p\to1\np\to2\n"));
    assert!(err.contains("p\te1"), "{err}");
}

#[test]
fn timeouts_stop_the_items_and_no_process_is_left() {
    let marker = util::marker("oneliner-timeout");
    let dir = tempfile::tempdir().unwrap();
    let out = runjobs()
        .current_dir(dir.path())
        .env("RUNJOBS_TEST_MARKER", &marker)
        .args([
            "exec",
            "--timeout",
            "300ms",
            "sh",
            "-c",
            "sleep 30 & sleep 30",
            "_",
            ":::",
            "a",
            "b",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    let left = util::wait_until_gone(&marker, Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_closed_stdout_stops_the_run_quietly_without_hanging_or_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["exec", "-j2", "-o", "r.json", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: String = (0..100_000).map(|i| format!("{i}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    // Fed from a thread: standard input streams, so runjobs reads it as items start.
    let feeder = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let mut first = [0u8; 2];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"0\n");
    // The reader is gone (as with `| head -1`).
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "runjobs hangs on a closed stdout"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    feeder.join().unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "quietly: {err}");
    // The reader had enough: the run stopped, and says so in its results.
    let doc = read_json(&dir.path().join("r.json"));
    assert_eq!(doc["status"], "interrupted");
    assert!(
        doc["summary"]["skipped"].as_u64().unwrap() > 0,
        "{}",
        doc["summary"]
    );
    assert_eq!(doc["summary"]["failed"], 0);
}

/// Runs `runjobs exec ARGS` with `stdin`, reading its stdout while sampling its peak
/// resident memory (KiB): (exit code, stdout, peak).
fn exec_measuring_peak_rss(args: &[&str], stdin: Vec<u8>) -> (Option<i32>, Vec<u8>, u64) {
    let mut child = Command::new(BIN)
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || input.write_all(&stdin));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        stdout.read_to_end(&mut all).map(|_| all)
    });
    let status_path = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut peak = 0;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line.split_whitespace().nth(1).and_then(|v| v.parse().ok());
            peak = peak.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    feeder.join().unwrap().unwrap();
    (status.code(), reader.join().unwrap().unwrap(), peak)
}

#[test]
fn a_hundred_thousand_items_print_in_order_in_bounded_memory() {
    let count = 100_000;
    let stdin: String = (1..=count).map(|i| format!("{i}\n")).collect();
    let (code, out, peak) = exec_measuring_peak_rss(&["-j2", "echo"], stdin.clone().into_bytes());
    assert_eq!(code, Some(0));
    assert!(out == stdin.as_bytes(), "100k lines in input order");
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn output_held_back_behind_a_slow_item_spills_past_the_budget() {
    // The first item waits while 80 others print 1 MiB each: 80 MiB held back, most of it
    // on disk (the in-memory budget is 16 MiB).
    let script = "if [ \"$1\" = 0 ]; then sleep 2; echo first; else head -c 1048576 /dev/zero; fi";
    let mut args = vec!["-j4", "--shell", script, ":::"];
    let numbers: Vec<String> = (0..=80).map(|i| i.to_string()).collect();
    args.extend(numbers.iter().map(String::as_str));
    let (code, out, peak) = exec_measuring_peak_rss(&args, Vec::new());
    assert_eq!(code, Some(0));
    assert_eq!(&out[..6], b"first\n");
    assert_eq!(out.len(), 6 + 80 * 1048576);
    assert!(out[6..].iter().all(|b| *b == 0));
    assert!(
        peak < 60 * 1024,
        "peak RSS {peak} KiB with 80 MiB held back"
    );
}

#[test]
fn on_slurm_the_outputs_come_from_the_shards_results_in_input_order() {
    let Some(_cluster) = crate::slurm::cluster() else {
        return;
    };
    let dir = tempfile::tempdir_in(util::repo().join("target")).unwrap();
    let (code, out, err) = exec_in(
        dir.path(),
        &[
            "--executor",
            "slurm",
            "-j2",
            "echo",
            "got",
            ":::",
            "a",
            "b",
            "c",
        ],
        b"",
    );
    assert_eq!((code, out.as_str()), (0, "got a\ngot b\ngot c\n"), "{err}");
    assert!(err.contains("submitted job array"), "{err}");
    let left: Vec<String> = names_in(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert!(
        left.is_empty(),
        "the submitted job file is removed: {left:?}"
    );
}

#[test]
fn completions_and_the_man_page_cover_exec() {
    let out = runjobs().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("exec"));
    let out = runjobs().arg("man").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exec"),
        "man page"
    );
}
