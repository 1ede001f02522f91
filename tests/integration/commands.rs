//! `command = [...]` functions: one real process per item.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::*;

/// Writes `job` into a fresh folder, runs it and returns (folder, exit code, results, stderr).
fn run(job: &str) -> (tempfile::TempDir, Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "job.toml", job);
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&path).arg("-o").arg(&out).output().unwrap();
    let doc = read_json(&out);
    (dir, output.status.code(), doc, stderr(&output))
}

const NASTY: &str =
    r#"["$(touch X)", "; touch Y", "`touch Z`", "a b  c", "it's \"quoted\"", "*", "-n"]"#;

#[test]
fn inputs_reach_the_program_literally() {
    let (dir, code, doc, err) = run(&format!(
        "[functions.echo]\ncommand = [\"printf\", \"%s\", \"{{input}}\"]\n\
         [[task]]\nfunction = \"echo\"\ninputs = {NASTY}\n"
    ));
    assert_eq!(code, Some(0), "{err}");
    let expected: Vec<Value> = serde_json::from_str(NASTY).unwrap();
    assert_eq!(outputs(&doc, 0), expected);
    for name in ["X", "Y", "Z"] {
        assert!(
            !dir.path().join(name).exists(),
            "{name} was created: an input reached a shell"
        );
    }
}

#[test]
fn shell_scripts_get_the_input_as_an_argument() {
    let (dir, code, doc, err) = run(&format!(
        "[functions.echo]\ncommand = ['printf \"%s\" \"$1\"']\nshell = true\n\
         [[task]]\nfunction = \"echo\"\ninputs = {NASTY}\n"
    ));
    assert_eq!(code, Some(0), "{err}");
    let expected: Vec<Value> = serde_json::from_str(NASTY).unwrap();
    assert_eq!(outputs(&doc, 0), expected);
    for name in ["X", "Y", "Z"] {
        assert!(!dir.path().join(name).exists(), "{name} was created");
    }
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let marker = marker("cmdtimeout");
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.nap]\ncommand = [\"sh\", \"-c\", \"sleep 30 & sleep 30\"]\ntimeout = \"300ms\"\n\
         kill_grace = \"200ms\"\n[[task]]\nfunction = \"nap\"\ninputs = [1]\n",
    );
    let out = dir.path().join("out.json");
    let started = Instant::now();
    runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .env("RUNJOBS_TEST_MARKER", &marker)
        .assert()
        .code(1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let doc = read_json(&out);
    assert_eq!(results(&doc, 0)[0]["status"], "timed_out");
    assert_eq!(
        wait_until_gone(&marker, Duration::from_secs(1)),
        Vec::<u32>::new(),
        "a sleep survived"
    );
}

#[test]
fn a_non_zero_exit_fails_the_item_with_its_code_and_stderr() {
    let (_dir, code, doc, _) = run(
        "[functions.f]\ncommand = [\"sh\", \"-c\", \"if [ $1 = 2 ]; then echo oops >&2; exit 3; fi; echo ok$1\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = [1, 2, 3]\n",
    );
    assert_eq!(code, Some(1));
    let r = results(&doc, 0);
    assert_eq!(r[0]["output"], "ok1");
    assert_eq!(r[2]["output"], "ok3");
    assert_eq!(r[1]["status"], "failed");
    let error = r[1]["error"].as_str().unwrap();
    assert!(
        error.contains("exit code 3") && error.contains("oops"),
        "{error}"
    );
}

#[test]
fn stdout_modes_and_stdin() {
    let (_dir, code, doc, err) = run(
        "[functions.j]\ncommand = [\"cat\"]\nstdin = \"json\"\nstdout = \"json\"\n\
         [functions.l]\ncommand = [\"printf\", \"a\\nb\\n\"]\nstdout = \"lines\"\n\
         [functions.i]\ncommand = [\"echo\", \"noise\"]\nstdout = \"ignore\"\n\
         [functions.t]\ncommand = [\"tr\", \"a-z\", \"A-Z\"]\nstdin = \"text\"\n\
         [[task]]\nfunction = \"j\"\ninputs = [{ a = [1, 2] }]\n\
         [[task]]\nfunction = \"l\"\ninputs = [0]\n\
         [[task]]\nfunction = \"i\"\ninputs = [0]\n\
         [[task]]\nfunction = \"t\"\ninputs = [\"shout\"]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(outputs(&doc, 0), [json!({"a": [1, 2]})]);
    assert_eq!(outputs(&doc, 1), [json!(["a", "b"])]);
    assert_eq!(results(&doc, 2)[0]["status"], "ok");
    assert!(results(&doc, 2)[0].get("output").is_none_or(Value::is_null));
    assert_eq!(outputs(&doc, 3), [json!("SHOUT")]);
}

#[test]
fn the_environment_carries_the_item() {
    let (_dir, code, doc, err) = run(
        "[functions.e]\ncommand = [\"sh\", \"-c\", \"echo $RUNJOBS_INPUT/$RUNJOBS_INDEX/$RUNJOBS_TASK/$RUNJOBS_JOB/$GREETING\"]\n\
         env = { GREETING = \"hi\" }\n[[task]]\nname = \"envtask\"\nfunction = \"e\"\ninputs = [\"x\", 7]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        outputs(&doc, 0),
        [json!("x/0/envtask/job/hi"), json!("7/1/envtask/job/hi")]
    );
}

#[test]
fn a_memory_limit_fails_a_greedy_command_with_a_clear_reason() {
    let (_dir, code, doc, err) = run(
        "[functions.greedy]\ncommand = [\"python3\", \"-c\", \"x = bytearray(800 * 1024 * 1024); print(len(x))\"]\n\
         limits = { memory = \"200MiB\" }\n[[task]]\nfunction = \"greedy\"\ninputs = [1]\n",
    );
    assert_eq!(code, Some(1), "{err}");
    let error = results(&doc, 0)[0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("MemoryError"), "{error}");
    assert!(error.contains("limits.memory = 200 MiB"), "{error}");
}

#[test]
fn huge_output_is_capped_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.flood]\ncommand = [\"sh\", \"-c\", \"head -c 104857600 /dev/zero | tr '\\\\000' a\"]\n\
         [[task]]\nfunction = \"flood\"\ninputs = [1]\n",
    );
    let out = dir.path().join("out.json");
    let (code, peak_kib) =
        run_measuring_peak_rss(&[job.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(code, Some(0));
    assert!(
        peak_kib < 64 * 1024,
        "runjobs peaked at {peak_kib} KiB for 100 MiB of output"
    );
    let doc = read_json(&out);
    let output = results(&doc, 0)[0]["output"].as_str().unwrap().to_owned();
    assert!(output.len() < 2 * 1024 * 1024, "{}", output.len());
    assert!(
        output.ends_with("…[truncated: 103809024 more bytes]"),
        "{}",
        &output[output.len() - 60..]
    );
}

#[test]
fn retries_with_backoff_until_it_succeeds() {
    let (dir, code, doc, err) = run(
        "[functions.flaky]\ncommand = [\"sh\", \"-c\", \"n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ] && echo done$n\"]\n\
         retries = { count = 3, backoff = \"exponential\", delay = \"100ms\" }\n\
         [[task]]\nfunction = \"flaky\"\ninputs = [1]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let r = &results(&doc, 0)[0];
    assert_eq!(r["status"], "ok");
    assert_eq!(r["attempts"], 3);
    assert_eq!(r["output"], "done3");
    // Two waits: 100 ms, then 200 ms; the last attempt started after both.
    assert!(r["started_s"].as_f64().unwrap() >= 0.3, "{r}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("count"))
            .unwrap()
            .trim(),
        "3"
    );
}

#[test]
fn retries_on_selects_which_failures_are_retried() {
    let (_dir, code, doc, _) = run(
        "[functions.f]\ncommand = [\"sh\", \"-c\", \"exit $1\", \"sh\", \"{input}\"]\n\
         retries = { count = 2, on = [\"exit:75\"] }\n[[task]]\nfunction = \"f\"\ninputs = [1, 75]\n",
    );
    assert_eq!(code, Some(1));
    let r = results(&doc, 0);
    assert_eq!(r[0]["attempts"], 1, "exit 1 is not retried");
    assert_eq!(r[1]["attempts"], 3, "exit 75 is");
}

#[test]
fn a_missing_program_fails_each_item_clearly() {
    let (_dir, code, doc, _) = run(
        "[functions.f]\ncommand = [\"no-such-program-here\", \"{input}\"]\n[[task]]\nfunction = \"f\"\ninputs = [1, 2]\n",
    );
    assert_eq!(code, Some(1));
    let error = results(&doc, 0)[0]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("cannot run `no-such-program-here`"),
        "{error}"
    );
}

#[test]
fn table_and_path_placeholders_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    write(dir.path(), "work/marker.txt", "here");
    let path = write(
        dir.path(),
        "job.toml",
        "[functions.t]\ncommand = [\"echo\", \"{input.name}-{input.size}\", \"{index}\"]\n\
         [functions.p]\ncommand = [\"echo\", \"{input.dir}|{input.stem}|{input.ext}|{input.name}\"]\n\
         [functions.here]\ncommand = [\"cat\", \"marker.txt\"]\ncwd = \"work\"\n\
         [[task]]\nfunction = \"t\"\ninputs = [{ name = \"a\", size = 1 }, { name = \"b\", size = 2 }]\n\
         [[task]]\nfunction = \"p\"\ninputs = [\"photos/2024/cat.jpeg\"]\n\
         [[task]]\nfunction = \"here\"\ninputs = [1]\n",
    );
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&path).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&out);
    assert_eq!(outputs(&doc, 0), [json!("a-1 0"), json!("b-2 1")]);
    assert_eq!(outputs(&doc, 1), [json!("photos/2024|cat|jpeg|cat.jpeg")]);
    assert_eq!(outputs(&doc, 2), [json!("here")]);
}

#[test]
fn command_stderr_is_relayed_to_the_log() {
    let (_dir, code, _doc, err) = run(
        "[functions.f]\ncommand = [\"sh\", \"-c\", \"echo progress-of-$1 >&2\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = [\"one\"]\n",
    );
    assert_eq!(code, Some(0));
    assert!(err.lines().any(|l| l == "progress-of-one"), "{err}");
}

#[test]
fn relayed_stderr_lines_are_capped_and_tag_names_their_task_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        "[functions.noisy]\ncommand = [\"sh\", \"-c\", \"head -c 102400 /dev/zero | tr '\\\\000' x >&2; echo >&2; echo after $1 >&2; echo $1\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"noisy\"\ninputs = [1, 2]\n",
    );
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let said = stderr(&output);
    let long: Vec<&str> = said.lines().filter(|l| l.starts_with("xxx")).collect();
    assert_eq!(long.len(), 2, "one capped line an item, not a flood");
    for line in long {
        assert!(line.len() < 9 * 1024, "{}", line.len());
        assert!(
            line.ends_with("…[line cut: 94208 more bytes]"),
            "{}",
            &line[line.len() - 40..]
        );
    }
    assert!(
        said.contains("\nafter 1\n") || said.starts_with("after 1\n"),
        "the next line is whole"
    );

    let output = runjobs()
        .arg(&job)
        .arg("-o")
        .arg(&out)
        .arg("--tag")
        .output()
        .unwrap();
    let said = stderr(&output);
    assert!(said.contains("[noisy #0] after 1"), "{said}");
    assert!(said.contains("[noisy #1] after 2"), "{said}");
    let py = write(
        dir.path(),
        "py.toml",
        "[[task]]\nfunction = \"print_number\"\ninputs = [7]\n",
    );
    let output = runjobs()
        .arg(&py)
        .arg("-o")
        .arg(&out)
        .arg("--tag")
        .output()
        .unwrap();
    let said = stderr(&output);
    assert!(
        said.contains("[print_number pid ") && said.contains("] Process 7: 7"),
        "{said}"
    );
}

#[test]
fn programs_are_found_on_the_path_the_command_gets() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("tools");
    let tool = write(&bin, "greet", "#!/bin/sh\necho \"hello $1\"\n");
    let mut perms = std::fs::metadata(&tool).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&tool, perms).unwrap();
    // A non-executable file of the same name earlier on PATH is passed over, as execvp does.
    write(&dir.path().join("early"), "greet", "not a program\n");
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "[functions.greet]\ncommand = [\"greet\", \"{{input}}\"]\nenv = {{ PATH = \"{}:{}:/usr/bin:/bin\" }}\n\
             [[task]]\nfunction = \"greet\"\nworkers = 2\ninputs = [\"a\", \"b\", \"c\"]\n",
            dir.path().join("early").display(),
            bin.display()
        ),
    );
    let out = dir.path().join("out.json");
    let output = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&out);
    assert_eq!(
        outputs(&doc, 0),
        [json!("hello a"), json!("hello b"), json!("hello c")]
    );
}
