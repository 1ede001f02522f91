//! Resolving job files: options, paths, kinds and every check.

use super::super::load::load_bytes;
use super::functions::*;
use super::options::*;
use super::*;

fn good(name: &str) -> Job {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/good")
        .join(name);
    match super::super::load(&path) {
        Ok(job) => job,
        Err(e) => panic!("{name} should load:\n{e}"),
    }
}

fn task<'a>(job: &'a Job, name: &str) -> &'a Task {
    job.tasks
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

#[test]
fn options_take_task_then_function_then_job_then_default() {
    let job = good("every_input.toml");
    let secs = |s: f64| Some(Duration::from_secs_f64(s));
    let evens = task(&job, "evens"); // task timeout, function kill_grace, job retries
    assert_eq!(
        (evens.timeout, evens.kill_grace, evens.retry.count),
        (secs(2.0), Duration::from_millis(500), 1)
    );
    let greetings = task(&job, "greetings"); // function timeout and retries, job kill_grace
    assert_eq!(
        (
            greetings.timeout,
            greetings.kill_grace,
            greetings.retry.count
        ),
        (secs(5.0), Duration::from_secs(1), 2)
    );
    assert_eq!(task(&job, "square").workers, 8);
    assert_eq!(task(&job, "values").workers, default_workers()); // "num-cpus"
    let minimal = good("minimal.toml");
    let t = &minimal.tasks[0];
    assert_eq!(
        (t.timeout, t.kill_grace, t.retry.count, t.workers),
        (None, DEFAULT_KILL_GRACE, 0, default_workers())
    );
}

#[test]
fn names_paths_and_formats_are_resolved() {
    let job = good("every_input.toml");
    assert_eq!(job.name, "every_input"); // the file's stem
    assert!(job.dir.is_absolute() && job.dir.ends_with("tests/fixtures/good"));
    assert_eq!(job.output.format, Some(Format::Toml));
    assert_eq!(
        job.output.path_template,
        job.dir.join("out/{date}/{job}-{timestamp}.results")
    );
    assert!(
        !job.dir.join("out").exists(),
        "validation must not create the output folder"
    );
    let minimal = good("minimal.toml");
    assert_eq!(
        minimal.output.path_template,
        minimal.dir.join("out/{job}.json")
    );
    assert_eq!(minimal.output.format, Some(Format::Json));
    assert_eq!(minimal.tasks[0].name, "double"); // the function's name
    assert_eq!(minimal.tasks[0].function.label, "builtin:double");
}

#[test]
fn every_inputs_form_resolves() {
    let job = good("every_input.toml");
    let dir = &job.dir;
    let inputs = |name: &str| task(&job, name).inputs.clone();
    assert!(
        matches!(inputs("values"), InputSpec::List(v) if v.len() == 7 && v[6] == "1979-05-27T07:32:00Z")
    );
    assert!(matches!(
        inputs("evens"),
        InputSpec::Range {
            start: 10,
            stop: 0,
            step: -2
        }
    ));
    assert!(matches!(inputs("upper"), InputSpec::Lines(p) if p == dir.join("data/words.txt")));
    assert!(matches!(inputs("rows"), InputSpec::File(p) if p == dir.join("data/rows.jsonl")));
    assert!(matches!(inputs("greetings"), InputSpec::From(t) if t == "upper"));
    let InputSpec::Glob { pattern, base } = inputs("line_count") else {
        panic!("a glob")
    };
    assert_eq!(
        (pattern, &base),
        (format!("{}/data/**/*.csv", dir.display()), dir)
    );
    let InputSpec::Matrix(axes) = inputs("grid") else {
        panic!("a matrix")
    };
    let keys: Vec<&str> = axes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    let FunctionKind::Builtin { name, options } = &task(&job, "greetings").function.kind else {
        panic!("greetings is a builtin");
    };
    assert_eq!(
        (name.as_str(), options.template.as_deref()),
        ("format", Some("Hello, {input}!"))
    );
}

#[test]
fn glob_base_folder_is_escaped() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let odd = tmp.path().join("odd[1]");
    std::fs::create_dir(&odd).expect("create folder");
    let text = "[[task]]\nfunction = \"line_count\"\ninputs = { glob = \"*.txt\" }\n";
    let job = load_bytes(&odd.join("j.toml"), text.as_bytes()).expect("valid job");
    let InputSpec::Glob { pattern, .. } = &job.tasks[0].inputs else {
        panic!("a glob")
    };
    assert!(pattern.ends_with("odd[[]1[]]/*.txt"), "{pattern}");
}

#[test]
fn semantic_problems_are_all_reported_at_once() {
    let text = "[output]\npath = \"out/{nope}.json\"\n\n[[task]]\nfunction = \"nope\"\ninputs = [1]\n\n\
                [[task]]\nname = \"b\"\nfunction = \"square\"\ninputs = { from = \"c\" }\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/x.toml");
    let err = load_bytes(&path, text.as_bytes()).expect_err("three problems");
    let lines: Vec<usize> = err.diagnostics().iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 5, 11], "{err}");
}

fn command(job: &Job, name: &str) -> CommandSpec {
    match &task(job, name).function.kind {
        FunctionKind::Command(c) => c.clone(),
        other => panic!("{name} is not a command: {other:?}"),
    }
}

#[test]
fn labels_name_each_function_kind() {
    let job = good("external_functions.toml");
    let label = |name: &str| task(&job, name).function.label.clone();
    assert_eq!(label("thumbs"), "command:thumbnail");
    assert_eq!(label("squared"), "worker:squares");
    assert_eq!(label("squared_py"), "python:data/fns.py:square_number");
    assert_eq!(label("cubed"), "builtin:cube"); // a declared builtin: the builtin's name
    let every = good("every_input.toml");
    assert_eq!(task(&every, "greetings").function.label, "builtin:format");
}

#[test]
fn command_modes_default_to_no_stdin_and_text_stdout() {
    let job = good("external_functions.toml");
    let grid = command(&job, "grid");
    assert_eq!(
        (grid.shell, grid.stdin, grid.stdout),
        (false, StdinMode::Null, StdoutMode::Text)
    );
    assert_eq!(grid.argv, ["echo", "x={input.x}", "lr={input.lr}"]);
    let described = command(&job, "described");
    assert_eq!(
        (described.shell, described.stdin, described.stdout),
        (false, StdinMode::Json, StdoutMode::Lines)
    );
    // Templates are kept as written; the runtime fills them in.
    assert_eq!(described.argv[1], "{{%s}} %s %s %s %s\n");
    let counted = command(&job, "counted");
    assert_eq!(
        (counted.shell, counted.stdin, counted.stdout),
        (true, StdinMode::Text, StdoutMode::Json)
    );
    assert_eq!(command(&job, "thumbs").stdout, StdoutMode::Ignore);
}

#[test]
fn paths_of_workers_and_python_functions_are_resolved() {
    let job = good("external_functions.toml");
    let dir = &job.dir;
    // `./worker.py` starts at the function's `cwd` (data), and becomes absolute.
    let FunctionKind::Worker { argv, .. } = &task(&job, "squared").function.kind else {
        panic!("a worker")
    };
    let worker = dir.join("data/worker.py").to_string_lossy().into_owned();
    assert_eq!(argv, &[worker, "--verbose".to_string()]);
    // A bare program is left to PATH, its arguments to the folder it runs in.
    let FunctionKind::Worker { argv, .. } = &task(&job, "squared_again").function.kind else {
        panic!("a worker")
    };
    assert_eq!(argv, &["python3", "worker.py"]);
    let FunctionKind::Python {
        file,
        function,
        python_exe,
    } = &task(&job, "squared_py").function.kind
    else {
        panic!("a python function")
    };
    assert_eq!(
        (file, function.as_str()),
        (&dir.join("data/fns.py"), "square_number")
    );
    let exe = dir.join("data/bin/python").to_string_lossy().into_owned();
    assert_eq!(python_exe, &exe);
    let FunctionKind::Python { python_exe, .. } = &task(&job, "cubed_py").function.kind else {
        panic!("a python function")
    };
    assert_eq!(python_exe, "python3");
}

#[test]
fn env_merges_by_key_and_limits_by_field_task_over_function() {
    let job = good("external_functions.toml");
    let dir = &job.dir;
    let env = |name: &str| -> Vec<(String, String)> {
        task(&job, name).env.clone().into_iter().collect()
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        env("squared_again"),
        pairs(&[("EXTRA", "1"), ("KEEP", "yes"), ("LEVEL", "task")])
    );
    assert_eq!(env("cubed"), pairs(&[("ONLY", "task")])); // the function sets none
    assert_eq!(env("grid"), []); // no job-level env
    let again = task(&job, "squared_again");
    assert_eq!(
        again.limits,
        Limits {
            memory: Some(1 << 30), // the function's
            cpu: Some(3),          // the task's, over the function's
            open_files: Some(32),  // the task's
        }
    );
    assert_eq!(again.cwd, dir.join("data/nested")); // the task's, over the function's
    assert_eq!(
        task(&job, "squared").limits,
        Limits {
            memory: Some(1_000_000_000),
            cpu: None,
            open_files: Some(64),
        }
    );
    assert_eq!(
        task(&job, "thumbs").limits,
        Limits {
            memory: Some(512 << 20),
            cpu: Some(60),
            open_files: Some(256),
        }
    );
    assert_eq!(task(&job, "thumbs").cwd, *dir); // default: the job's folder
    assert_eq!(task(&job, "counted").cwd, dir.join("data"));
    assert_eq!(task(&job, "grid").limits, Limits::default());
}

#[test]
fn retries_table_resolves_and_is_taken_whole_task_over_function_over_job() {
    let job = good("external_functions.toml");
    let retry = |name: &str| task(&job, name).retry.clone();
    let secs = Duration::from_secs;
    // The job's table: defaults for what it leaves out.
    let job_level = RetryPolicy {
        count: 1,
        backoff: Backoff::Fixed,
        delay: Duration::from_millis(100),
        max_delay: secs(30),
        on: vec![],
    };
    assert_eq!(retry("grid"), job_level);
    assert_eq!(
        retry("counted"),
        RetryPolicy {
            count: 3,
            backoff: Backoff::Exponential,
            delay: secs(1),
            max_delay: secs(30),
            on: vec![
                RetryOn::Timeout,
                RetryOn::Crash,
                RetryOn::Error,
                RetryOn::Exit(75)
            ],
        }
    );
    // A task's count replaces its function's table, backoff and all.
    assert_eq!(retry("squared_again"), RetryPolicy::count(4));
    assert_eq!(retry("cubed"), RetryPolicy::count(0));
    // Other options keep their precedence.
    let t = task(&job, "thumbs");
    assert_eq!((t.timeout, t.kill_grace), (Some(secs(120)), secs(1)));
    let t = task(&job, "squared");
    assert_eq!((t.timeout, t.kill_grace), (Some(secs(30)), secs(5)));
}

#[test]
fn max_items_per_worker_takes_the_task_then_the_function() {
    let job = good("external_functions.toml");
    let max = |name: &str| task(&job, name).max_items_per_worker;
    assert_eq!(max("squared_py"), Some(2));
    assert_eq!(max("squared"), Some(50));
    assert_eq!(max("cubed"), Some(1000));
    assert_eq!(max("cubed_py"), None);
}

#[test]
fn a_lone_retry_delay_raises_the_default_cap() {
    let text = "retries = { count = 2, delay = \"1m\" }\n[[task]]\nfunction = \"square\"\n\
                inputs = [1]\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/x.toml");
    let job = load_bytes(&path, text.as_bytes()).expect("valid job");
    let r = &job.tasks[0].retry;
    assert_eq!(
        (r.delay, r.max_delay),
        (Duration::from_secs(60), Duration::from_secs(60))
    );
}

fn problems(f: fn(&str) -> Vec<Problem>, text: &str) -> Vec<(Range<usize>, String)> {
    f(text)
        .into_iter()
        .map(|p| (p.range, format!("{} / {}", p.message, p.help)))
        .collect()
}

#[test]
fn command_templates_accept_the_placeholders_and_doubled_braces() {
    for ok in [
        "{input}",
        "x{index}y",
        "thumbs/{input.stem}.png",
        "{input.name}{input.dir}{input.ext}",
        "{input.some key}",
        "{{literal}}",
        "{{{input}}}",
        "}}",
        "no braces",
        "",
    ] {
        assert_eq!(problems(template_problems, ok), [], "{ok}");
    }
}

#[test]
fn command_templates_point_at_each_bad_brace_with_a_suggestion() {
    let p = problems(template_problems, "in/{inpt}.png");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, 3..9);
    assert!(p[0].1.contains("did you mean `{input}`?"), "{}", p[0].1);
    let p = problems(template_problems, "{Index}");
    assert!(p[0].1.contains("did you mean `{index}`?"), "{}", p[0].1);
    for (bad, range, word) in [
        ("a{}b", 1..3, "empty placeholder"),
        ("out/{input.stem", 4..5, "unclosed"),
        ("a}b", 1..2, "unmatched `}`"),
        ("{index.x}", 0..9, "unknown placeholder"),
        ("{input.}", 0..8, "unknown placeholder"),
        ("{\"n\": 1", 0..1, "unclosed"),
    ] {
        let p = problems(template_problems, bad);
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert_eq!(p[0].0, range, "{bad}");
        assert!(p[0].1.contains(word), "{bad}: {}", p[0].1);
    }
    // JSON written without doubling: both braces are reported.
    let p = problems(template_problems, "{\"n\": {input}}");
    let ranges: Vec<Range<usize>> = p.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(ranges, [0..1, 13..14], "{p:?}");
    assert!(p[0].1.contains("unescaped `{`"), "{}", p[0].1);
}

#[test]
fn shell_scripts_reject_our_placeholders_but_keep_the_shells_braces() {
    for ok in [
        "wc -l \"$1\"",
        "echo ${input} ${HOME} {a,b} {1..3}",
        "awk '{print $1}' \"$1\"",
        "f() { echo \"$1\"; }; f \"$1\"",
        "echo {{input}}",
    ] {
        assert_eq!(problems(script_problems, ok), [], "{ok}");
    }
    let p = problems(script_problems, "wc -l {input} | cut -f1");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, 6..13);
    assert!(
        p[0].1
            .contains("with shell = true the input is $1 (never spliced into the script)"),
        "{}",
        p[0].1
    );
    let p = problems(script_problems, "echo {index}");
    assert!(p[0].1.contains("$RUNJOBS_INDEX"), "{}", p[0].1);
    let p = problems(script_problems, "echo {number}");
    assert!(p[0].1.contains("$((RUNJOBS_INDEX + 1))"), "{}", p[0].1);
    let p = problems(script_problems, "convert x {input.stem}.png");
    assert!(p[0].1.contains("\"$2\""), "{}", p[0].1);
}

#[test]
fn retry_on_entries_parse_or_explain() {
    assert_eq!(retry_on("timeout"), Ok(RetryOn::Timeout));
    assert_eq!(retry_on("crash"), Ok(RetryOn::Crash));
    assert_eq!(retry_on("error"), Ok(RetryOn::Error));
    assert_eq!(retry_on("exit:0"), Ok(RetryOn::Exit(0)));
    assert_eq!(retry_on("exit:255"), Ok(RetryOn::Exit(255)));
    for bad in ["exit:256", "exit:-1", "exit:+5", "exit:", "exit:x"] {
        let (msg, _) = retry_on(bad).expect_err(bad);
        assert!(msg.contains("0 to 255"), "{bad}: {msg}");
    }
    let (_, help) = retry_on("timout").expect_err("a typo");
    assert!(help.starts_with("did you mean `timeout`?"), "{help}");
    let (_, help) = retry_on("exit 75").expect_err("no colon");
    assert!(help.contains("`exit:N`"), "{help}");
    let (msg, help) = retry_on("oom").expect_err("unknown");
    assert!(
        msg.contains("`oom`") && help.contains("`crash`"),
        "{msg} {help}"
    );
}

#[test]
fn python_function_check_finds_defs_assignments_and_imports() {
    let text = "import math\nfrom functools import partial, reduce as fold\n\n\
                def square_number(number):\n    return number * number\n\n\
                class K:\n    def method(self):\n        pass\n\n\
                cube = partial(pow, exp=3)\nlimit: int = 3\n\
                def  spaced (x): pass\nasync def later(x): pass\n";
    for name in [
        "square_number",
        "method",
        "cube",
        "limit",
        "spaced",
        "partial",
        "fold",
        "math",
    ] {
        assert!(python_defines(text, name), "{name}");
    }
    for name in ["square", "number", "K2", "later", "return"] {
        assert!(!python_defines(text, name), "{name}");
    }
    assert_eq!(python_defs(text), ["square_number", "method", "spaced"]);
    assert!(is_python_identifier("_private2") && is_python_identifier("größe"));
    for bad in ["", "2x", "square-number", "a.b", "a b"] {
        assert!(!is_python_identifier(bad), "{bad}");
    }
}

#[test]
fn worker_and_interpreter_paths_must_be_executable_files() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path();
    std::fs::write(dir.join("w.py"), "print()\n").expect("write w.py");
    std::fs::write(dir.join("fns.py"), "def f(x):\n    return x\n").expect("write fns.py");
    let text = "[functions.w]\nworker = [\"./w.py\"]\n\n[functions.p]\npython = \"fns.py:f\"\n\
                python_exe = \"venv/bin/python\"\n\n[[task]]\nfunction = \"w\"\ninputs = [1]\n";
    let err = load_bytes(&dir.join("j.toml"), text.as_bytes()).expect_err("two problems");
    let shown = err.to_string();
    assert_eq!(err.len(), 2, "{shown}");
    assert!(
        shown.contains("worker program `./w.py` is not executable"),
        "{shown}"
    );
    assert!(shown.contains("chmod +x"), "{shown}");
    assert!(
        shown.contains("python interpreter `venv/bin/python` does not exist"),
        "{shown}"
    );
}
