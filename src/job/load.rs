//! Loading a job file: read → TOML parse with spans → schema check → deserialize → resolve.
//!
//! Each stage reports *every* problem it finds, with its position. The semantic checks run
//! when the schema found nothing, or only what they need not guess about: unknown keys (left
//! out) and `nan`/`inf` values (read as 0); any other schema error would make them guess.
//! Nothing here runs anything or writes to the file system.

use std::path::{Path, PathBuf};

use serde_json::json;
use toml::de::DeTable;

use super::diag::{Diagnostic, JobFileErrors};
use super::model::JobFile;
use super::resolve::resolve;
use super::resolved::Job;
use super::schema;
use super::span::{At, Source};

/// Load, validate and resolve the job file at `path` (as the user named it).
pub fn load(path: &Path) -> Result<Job, JobFileErrors> {
    match std::fs::read(path) {
        Ok(bytes) => load_bytes(path, &bytes),
        Err(e) => Err(JobFileErrors::new(
            path,
            vec![Diagnostic::file(
                path,
                format!("cannot read job file `{}`: {e}", path.display()),
            )],
        )),
    }
}

/// Loads every file of `paths`: the jobs, and every file's errors (all of them, not only the
/// first file's).
pub fn load_all(paths: &[PathBuf]) -> (Vec<Job>, Vec<JobFileErrors>) {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load(path) {
            Ok(job) => jobs.push(job),
            Err(e) => errors.push(e),
        }
    }
    (jobs, errors)
}

/// `load` for contents already read; `path` still anchors relative paths.
pub(crate) fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Job, JobFileErrors> {
    let fail = |diags: Vec<Diagnostic>| Err(JobFileErrors::new(path, diags));
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()])
                .expect("the prefix before `valid_up_to` is UTF-8");
            let src = Source {
                path,
                text: valid,
                doc: toml::Spanned::new(0..0, DeTable::new()),
            };
            let d = src.at_span(valid.len()..valid.len(), "the job file is not UTF-8 text");
            return fail(vec![
                d.with_help("TOML files must be UTF-8; re-save it as UTF-8"),
            ]);
        }
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let src = Source { path, text, doc };
    if !syntax.is_empty() {
        return fail(syntax.iter().map(|e| syntax_error(&src, e)).collect());
    }
    let table = match toml::from_str::<toml::Table>(text) {
        Ok(table) => table,
        Err(e) => return fail(vec![syntax_error(&src, &e)]),
    };
    let not_json = non_finite_floats(&table, &src);
    if !not_json.is_empty() {
        // A value check is no reason to hide the other mistakes: the rest of the file is
        // checked as if each `nan` or `inf` were 0, and what that stand-in would cause at
        // their places is left out (the schema would only say "not a number"). The semantic
        // pass reads the file with, for each, the stand-in the schema likes best there (the
        // key left out, as a 0 is no duration; `inputs = nan` must still be a task); in an
        // array the 0 stays, so positions hold.
        let at_not_json =
            |d: &Diagnostic| not_json.iter().any(|n| (n.line, n.col) == (d.line, d.col));
        let semantic = semantic_stand_ins(&table, &src, &at_not_json);
        let mut instance = toml_to_json(toml::Value::Table(table));
        zero_nulls(&mut instance);
        let mut diags = schema::check(&instance, &src);
        diags.retain(|d| !at_not_json(d));
        let mut diags = with_semantic_errors(diags, &semantic, &src, at_not_json);
        diags.retain(|d| !at_not_json(d));
        diags.extend(not_json);
        diags.sort_by_key(|d| (d.line, d.col));
        return fail(diags);
    }
    let instance = toml_to_json(toml::Value::Table(table));
    let diags = schema::check(&instance, &src);
    if !diags.is_empty() {
        return fail(with_semantic_errors(diags, &instance, &src, |_| false));
    }
    let file = match serde_json::from_value::<JobFile>(instance) {
        Ok(file) => file,
        Err(e) => return fail(vec![serde_error(&src, &e)]),
    };
    resolve(file, &src).or_else(fail)
}

/// `diags` (the schema's word on `instance`, perhaps nothing) and the semantic errors too (an
/// unknown function, say), so they show now, not after the next edit: mistyped keys are the
/// usual schema errors, and without them the file may still be sound enough to resolve.
/// Anything less sound shows its schema errors alone; schema errors that `reported` says are
/// told otherwise do not count.
fn with_semantic_errors(
    mut diags: Vec<Diagnostic>,
    instance: &serde_json::Value,
    src: &Source<'_>,
    reported: impl Fn(&Diagnostic) -> bool,
) -> Vec<Diagnostic> {
    let pruned = schema::without_unknown_keys(instance);
    if schema::check(&pruned, src).iter().all(reported)
        && let Ok(file) = serde_json::from_value::<JobFile>(pruned)
        && let Err(semantic) = resolve(file, src)
    {
        let known = |d: &Diagnostic| diags.iter().any(|s| (s.line, s.col) == (d.line, d.col));
        let new: Vec<Diagnostic> = semantic.into_iter().filter(|d| !known(d)).collect();
        diags.extend(new);
        diags.sort_by_key(|d| (d.line, d.col));
    }
    diags
}

/// Puts a 0 in place of every `null`.
fn zero_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Null => *value = serde_json::Value::from(0),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zero_nulls),
        serde_json::Value::Object(table) => table.values_mut().for_each(zero_nulls),
        _ => {}
    }
}

/// The file for the semantic pass, a `nan` or an `inf` (a `null` after `toml_to_json`, which
/// nothing else becomes: TOML has no null) replaced: in an array by 0, as a table's value by
/// whichever of leaving the key out, `[]`, `""`, `["-"]` or 0 leaves the fewest schema
/// errors not at a `nan` (`at_not_json`), chosen one key at a time.
fn semantic_stand_ins(
    table: &toml::Table,
    src: &Source<'_>,
    at_not_json: &impl Fn(&Diagnostic) -> bool,
) -> serde_json::Value {
    let mut instance = toml_to_json(toml::Value::Table(table.clone()));
    let mut keys = Vec::new();
    nulls_to_zero_in_arrays(&mut instance, &mut String::new(), &mut keys);
    let errors = |candidate: &serde_json::Value| {
        let pruned = schema::without_unknown_keys(candidate);
        let diags = schema::check(&pruned, src);
        diags.iter().filter(|d| !at_not_json(d)).count()
    };
    for (parent, key) in &keys {
        if let Some(table) = instance.pointer_mut(parent).and_then(|t| t.as_object_mut()) {
            table.remove(key);
        }
    }
    for (parent, key) in &keys {
        let mut fewest = errors(&instance);
        let mut best = None;
        let stand_ins = [json!([]), json!(""), json!(["-"]), json!(0)];
        for stand_in in stand_ins {
            let Some(table) = instance.pointer_mut(parent).and_then(|t| t.as_object_mut()) else {
                break;
            };
            table.insert(key.clone(), stand_in.clone());
            let now = errors(&instance);
            if now < fewest {
                (fewest, best) = (now, Some(stand_in));
            }
        }
        if let Some(table) = instance.pointer_mut(parent).and_then(|t| t.as_object_mut()) {
            match best {
                Some(stand_in) => table.insert(key.clone(), stand_in),
                None => table.remove(key),
            };
        }
    }
    instance
}

/// Puts a 0 in place of each `null` in an array; the table keys holding one are listed in
/// `keys` (their table's JSON pointer, the key).
fn nulls_to_zero_in_arrays(
    value: &mut serde_json::Value,
    pointer: &mut String,
    keys: &mut Vec<(String, String)>,
) {
    match value {
        serde_json::Value::Null => *value = serde_json::Value::from(0),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                nulls_to_zero_in_arrays(item, pointer, keys);
                pointer.truncate(len);
            }
        }
        serde_json::Value::Object(table) => {
            for (key, item) in table.iter_mut() {
                if item.is_null() {
                    keys.push((pointer.clone(), key.clone()));
                    continue;
                }
                let len = pointer.len();
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointer.push_str(&format!("/{escaped}"));
                nulls_to_zero_in_arrays(item, pointer, keys);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

fn syntax_error(src: &Source<'_>, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let mut message = e.message().trim().to_string();
    if message == "duplicate key"
        && let Some(key) = src.text.get(span.clone())
    {
        message = format!("duplicate key `{key}`");
    }
    src.at_span(span, format!("invalid TOML: {message}"))
}

/// The schema passed but serde did not: a case the schema cannot express, in practice `4.0`
/// where an integer is wanted (JSON Schema counts 4.0 as an integer). serde_json's error has
/// no position, so ask toml's deserializer, which has one, for the same error.
fn serde_error(src: &Source<'_>, e: &serde_json::Error) -> Diagnostic {
    let Err(te) = toml::from_str::<JobFile>(src.text) else {
        return src.at_span(0..0, format!("cannot use this job file: {e}"));
    };
    let span = te.span().unwrap_or(0..0);
    let written = src.text.get(span.clone()).unwrap_or("").trim();
    if written.parse::<f64>().is_ok() && written.parse::<i64>().is_err() {
        let msg = format!("expected a whole number, found the float `{written}`");
        src.at_span(span, msg)
            .with_help("write it without a decimal point or exponent")
    } else {
        src.at_span(
            span,
            format!("cannot use `{written}` here: {}", te.message().trim()),
        )
    }
}

/// `nan` and `inf` anywhere in the file: TOML has them, JSON (inputs, outputs, results) does
/// not, so they would turn into `null` on the way.
fn non_finite_floats(table: &toml::Table, src: &Source<'_>) -> Vec<Diagnostic> {
    fn walk(
        value: &toml::Value,
        path: &mut Vec<String>,
        src: &Source<'_>,
        out: &mut Vec<Diagnostic>,
    ) {
        match value {
            toml::Value::Float(f) if !f.is_finite() => {
                let at: Vec<&str> = path.iter().map(String::as_str).collect();
                let shown = match f {
                    f if f.is_nan() => "nan",
                    f if *f > 0.0 => "inf",
                    _ => "-inf",
                };
                let message = format!("`{shown}` has no JSON form (JSON has no NaN or infinity)");
                let help = "use a finite number, or a string such as \"nan\" if the \
                            function takes text";
                out.push(src.diag(&at, At::Value, message).with_help(help));
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    walk(item, path, src, out);
                    path.pop();
                }
            }
            toml::Value::Table(table) => {
                for (key, item) in table {
                    path.push(key.clone());
                    walk(item, path, src, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut path = Vec::new();
    for (key, value) in table {
        path.push(key.clone());
        walk(value, &mut path, src, &mut out);
        path.pop();
    }
    out
}

/// toml::Value → serde_json::Value. Not `serde_json::to_value`: that turns a datetime into
/// `{"$__toml_private_datetime": …}`; here a datetime becomes its text.
pub(crate) fn toml_to_json(v: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        // NaN and infinities have no JSON form.
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            J::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    fn fixtures(kind: &str) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(kind);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        files
    }

    /// The `# expect: LINE:COL KEYWORD` lines of a bad fixture.
    fn expectations(path: &Path) -> Vec<(String, String)> {
        let bytes = std::fs::read(path).expect("fixture is readable");
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .filter_map(|l| l.split_once(' '))
            .map(|(pos, kw)| (pos.to_string(), kw.trim().to_string()))
            .collect()
    }

    /// Whether the rendered report has ` --> …:LINE:COL` lines (every positioned diagnostic).
    fn has_line_col(rendered: &str) -> bool {
        rendered
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("--> "))
            .all(|loc| {
                let mut parts = loc.rsplitn(3, ':');
                let col = parts.next().and_then(|c| c.parse::<usize>().ok());
                let line = parts.next().and_then(|l| l.parse::<usize>().ok());
                col.is_some_and(|c| c > 0) && line.is_some_and(|l| l > 0)
            })
            && rendered.contains("--> ")
    }

    #[test]
    fn bad_fixtures_report_every_expected_problem_in_place() {
        let files = fixtures("bad");
        assert!(files.len() >= 70, "only {} bad fixtures", files.len());
        for path in files {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("fixture is readable");
            assert!(
                bytes.starts_with(b"#:schema ../../../schemas/job.schema.json\n"),
                "{name}"
            );
            let expects = expectations(&path);
            assert!(!expects.is_empty(), "{name} has no `# expect:` line");
            let err = match load(&path) {
                Ok(_) => panic!("{name} loaded, but it is invalid"),
                Err(err) => err,
            };
            let shown = err.to_string();
            for (pos, keyword) in &expects {
                let at = format!("bad/{name}:{pos}");
                // The keyword must be in the same diagnostic as the position.
                let hit = shown
                    .split("\n\n")
                    .any(|d| d.contains(&at) && d.contains(keyword.as_str()));
                assert!(
                    hit,
                    "{name}: no diagnostic at {at} mentioning `{keyword}` in:\n{shown}"
                );
            }
            assert!(
                err.len() >= expects.len(),
                "{name}: {} < {}",
                err.len(),
                expects.len()
            );
            assert!(shown.ends_with(&format!(
                "due to {} previous error{}",
                err.len(),
                if err.len() == 1 { "" } else { "s" }
            )));
        }
    }

    #[test]
    fn good_fixtures_and_shipped_jobs_load() {
        let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
        let mut files = fixtures("good");
        assert!(files.len() >= 6);
        if jobs.is_dir() {
            let mut shipped: Vec<PathBuf> = std::fs::read_dir(&jobs)
                .expect("jobs/ is listable")
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.append(&mut shipped);
        }
        for path in files {
            if let Err(e) = load(&path) {
                panic!("{} should load:\n{e}", path.display());
            }
        }
    }

    #[test]
    fn unreadable_file_names_its_path() {
        let path = Path::new("no/such/dir/job.toml");
        let err = load(path).expect_err("a missing file cannot load");
        let shown = err.to_string();
        assert_eq!(err.len(), 1);
        assert!(
            shown.contains("cannot read job file `no/such/dir/job.toml`"),
            "{shown}"
        );
        assert!(shown.contains(" --> no/such/dir/job.toml\n"), "{shown}");
    }

    #[test]
    fn syntax_errors_are_all_reported_with_positions() {
        let text = "name = \"x\"\nworkers = \ntimeout = \"5s\n[output\n";
        let err = load_bytes(Path::new("j.toml"), text.as_bytes()).expect_err("broken TOML");
        let shown = err.to_string();
        assert!(err.len() >= 2, "{shown}");
        assert!(
            shown.contains("j.toml:2:11") && shown.contains("invalid TOML"),
            "{shown}"
        );
    }

    #[test]
    fn datetimes_become_strings() {
        let v: toml::Value = toml::from_str("d = 1979-05-27T07:32:00Z").expect("valid TOML");
        assert_eq!(
            toml_to_json(v),
            serde_json::json!({ "d": "1979-05-27T07:32:00Z" })
        );
    }

    /// One random edit of a job file's bytes.
    #[derive(Debug, Clone)]
    enum Mutation {
        Delete(prop::sample::Index, usize),
        Insert(prop::sample::Index, Vec<u8>),
        Replace(prop::sample::Index, u8),
        SwapLines(prop::sample::Index, prop::sample::Index),
        InsertLine(prop::sample::Index, String),
        Truncate(prop::sample::Index),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let keys = prop::sample::select(vec![
            "name",
            "workers",
            "timeout",
            "retries",
            "kill_grace",
            "schedule",
            "function",
            "inputs",
            "range",
            "path",
            "format",
            "builtin",
            "template",
            "from",
            "task",
            "output",
            "timout",
            "[output]",
            "[[task]]",
            "[functions.f]",
            "inputs.range",
            "\"a.b\"",
            "é",
            "command",
            "worker",
            "python",
            "shell",
            "batch",
            "stdin",
            "stdout",
            "python_exe",
            "env",
            "cwd",
            "limits",
            "max_items_per_worker",
            "limits.memory",
            "retries.on",
        ]);
        let values = prop::sample::select(vec![
            "1",
            "0",
            "-1",
            "4.0",
            "1e400",
            "nan",
            "\"x\"",
            "\"5s\"",
            "\"num-cpus\"",
            "[1, 2]",
            "[]",
            "{}",
            "{ range = [1, 2, 0] }",
            "{ from = \"square\" }",
            "{ lines = \"x\" }",
            "1979-05-27",
            "\"{job}/{nope}\"",
            "\"* * * * * *\"",
            "true",
            "\"[\"",
            "",
            "[\"echo\", \"{inpt}\", \"{\", \"}\"]",
            "[\"wc -l {input}\"]",
            "[\"./nope.py\"]",
            "\"data/fns.py:square_numbr\"",
            "\"fns.py\"",
            "{ A = 1 }",
            "{ memory = \"1KiB\", cpu = \"0s\", open_files = 2 }",
            "{ count = 1, on = [\"timout\", \"exit:300\"] }",
            "{ count = 1, delay = \"1m\", max_delay = \"1s\" }",
            "\"no/such/dir\"",
            "\"yaml\"",
        ]);
        prop_oneof![
            (any::<prop::sample::Index>(), 1..8usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
            (
                any::<prop::sample::Index>(),
                prop::collection::vec(any::<u8>(), 1..6)
            )
                .prop_map(|(i, b)| Mutation::Insert(i, b)),
            (
                any::<prop::sample::Index>(),
                prop::sample::select(b"\"'[]{}=.\n#\\x\xff".to_vec())
            )
                .prop_map(|(i, b)| Mutation::Replace(i, b)),
            (any::<prop::sample::Index>(), any::<prop::sample::Index>())
                .prop_map(|(a, b)| Mutation::SwapLines(a, b)),
            (any::<prop::sample::Index>(), keys, values)
                .prop_map(|(i, k, v)| Mutation::InsertLine(i, format!("{k} = {v}"))),
            any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
        let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
        match m {
            Mutation::Delete(i, n) => {
                let start = at(i, bytes.len());
                let end = (start + n).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Insert(i, b) => {
                let pos = at(i, bytes.len());
                bytes.splice(pos..pos, b.iter().copied());
            }
            Mutation::Replace(i, b) => {
                if !bytes.is_empty() {
                    let pos = i.index(bytes.len());
                    bytes[pos] = *b;
                }
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
                *bytes = lines.join(&b'\n');
            }
            Mutation::InsertLine(i, line) => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let pos = at(i, lines.len());
                lines.insert(pos, line.as_bytes().to_vec());
                *bytes = lines.join(&b'\n');
            }
            Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::testing::fuzz_cases(300), ..ProptestConfig::default() })]

        /// Whatever the edit, loading never panics, and a failure says where.
        #[test]
        fn mutated_job_files_never_panic_and_errors_have_positions(
            seed in prop::sample::select(fixtures("good")),
            mutations in prop::collection::vec(mutation(), 1..5),
        ) {
            let mut bytes = std::fs::read(&seed).expect("good fixture is readable");
            for m in &mutations {
                apply(&mut bytes, m);
            }
            // A name that does not exist, beside the seed so its data files resolve.
            let path = seed.with_file_name("mutated.toml");
            if let Err(err) = load_bytes(&path, &bytes) {
                let shown = err.to_string();
                prop_assert!(!err.is_empty() && !shown.is_empty());
                prop_assert!(has_line_col(&shown), "no line:col in:\n{}", shown);
            }
        }
    }
}
