//! The job-file JSON Schema: embeds `schemas/job.schema.json`, validates a document against it,
//! and turns each schema error into a `Diagnostic` that says, in the user's terms, what is
//! wrong and how to fix it.
//!
//! The schema file is the single source of truth for the document's shape, including the lists
//! of accepted keys shown in help. Checks that need more than one value or the file system
//! belong in `resolve.rs`, not here.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::diag::{Diagnostic, backticked, did_you_mean};
use super::span::{At, Source, key_path};

/// The job-file schema, byte for byte as shipped in `schemas/job.schema.json`.
pub fn schema_text() -> &'static str {
    include_str!("../../schemas/job.schema.json")
}

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(schema_text()).expect("the embedded schema is JSON"))
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_format("duration", |s: &str| humantime::parse_duration(s).is_ok())
            .with_format("cron", |s: &str| cron_problem(s).is_none())
            .build(schema())
            .expect("the embedded schema is a valid draft 2020-12 schema")
    })
}

/// Why `s` is not a schedule crontab can run, if it is not one.
pub fn cron_problem(s: &str) -> Option<String> {
    use croner::parser::{CronParser, Seconds, Year};
    let fields = s.split_whitespace().count();
    // croner also takes seconds and years, which crontab cannot run; `@daily` and friends are
    // one field and fine.
    if fields != 5 && !(fields == 1 && s.trim().starts_with('@')) {
        return Some(format!(
            "it has {fields} field{}; crontab takes 5 (minute hour day-of-month month day-of-week)",
            if fields == 1 { "" } else { "s" }
        ));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser.parse(s).err().map(|e| e.to_string())
}

/// Every schema problem of `instance` (the document as JSON), as diagnostics.
pub fn check(instance: &Value, src: &Source<'_>) -> Vec<Diagnostic> {
    let errors: Vec<ValidationError<'_>> = validator().iter_errors(instance).collect();
    let mut leaves = Vec::new();
    errors.iter().for_each(|e| explain(e, &mut leaves));
    leaves.into_iter().flat_map(|e| describe(e, src)).collect()
}

/// For `oneOf`/`anyOf` failures, descend into the branch the user meant: one with no failed
/// `const` and no `type` mismatch at this path; else the branch with fewest errors. Keeps the
/// error itself where its own message is better than any branch's (`workers`, `inputs` of the
/// wrong type).
fn explain<'a>(e: &'a ValidationError<'a>, out: &mut Vec<&'a ValidationError<'a>>) {
    let context = match e.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context }
            if !e.schema_path().as_str().starts_with("/$defs/workers") =>
        {
            context
        }
        _ => return out.push(e),
    };
    let wrong_shape = |b: &ValidationError<'_>| {
        b.kind().keyword() == "const"
            || (b.kind().keyword() == "type" && b.instance_path() == e.instance_path())
    };
    match context
        .iter()
        .find(|br| !br.is_empty() && !br.iter().any(wrong_shape))
    {
        Some(branch) => branch.iter().for_each(|b| explain(b, out)),
        None => out.push(e),
    }
}

/// The instance path of `e` as unescaped segments.
fn segments(e: &ValidationError<'_>) -> Vec<String> {
    e.instance_path()
        .segments()
        .map(|s| s.to_string())
        .collect()
}

/// The schema node at `e`'s keyword's parent (e.g. the object holding `properties` for an
/// `additionalProperties` error). `$ref`s are already resolved in jsonschema's schema path.
fn schema_parent(e: &ValidationError<'_>) -> Option<&'static Value> {
    let path = e.schema_path().as_str();
    let parent = &path[..path.rfind('/')?];
    schema().pointer(parent)
}

/// Where the table at `segs` is, as the user wrote it: "at the top level", "in `[output]`",
/// "in `[[task]]` #2".
fn table_place(segs: &[&str]) -> String {
    if segs.is_empty() {
        "at the top level".into()
    } else {
        format!("in {}", table_name(segs))
    }
}

/// How the user wrote the table at `segs`: "`[output]`", "`[[task]]` #2".
fn table_name(segs: &[&str]) -> String {
    match segs {
        ["functions", name] => format!("`[functions.{}]`", key_path(&[name], |_| false)),
        ["task", i] => format!("`[[task]]` #{}", task_number(i)),
        ["task", i, rest @ ..] => format!("`{}` of `[[task]]` #{}", rest.join("."), task_number(i)),
        _ => format!("`[{}]`", segs.join(".")),
    }
}

fn task_number(i: &str) -> String {
    i.parse::<usize>()
        .map_or_else(|_| i.to_string(), |n| (n + 1).to_string())
}

/// A JSON value as the user would have written it: strings bare, the rest as text.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The TOML name of a value's type, with its article.
fn toml_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn schema_type_name(t: &str) -> &str {
    match t {
        "object" => "a table",
        "array" => "an array",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        "string" => "a string",
        other => other,
    }
}

const INPUT_KEYS: &str = "`range`, `lines`, `file`, `glob`, `matrix`, `from`";
const INPUTS_HELP: &str = "for example `inputs = [1, 2, 3]`, `inputs = { range = [1, 101] }` or \
                           `inputs = { lines = \"urls.txt\" }`";
const DURATION_HELP: &str = "use a duration such as \"500ms\", \"10s\", \"2m\" or \"1h 30m\"";
const TASK_HELP: &str = "add at least one task, for example:\n[[task]]\nfunction = \"square\"\n\
                         inputs = [1, 2, 3]";

/// One schema error as diagnostics (an `additionalProperties` error gives one per key).
fn describe(e: &ValidationError<'_>, src: &Source<'_>) -> Vec<Diagnostic> {
    let owned = segments(e);
    let segs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let value = e.instance();
    let v = shown(value);
    let last = segs.last().copied().unwrap_or("");
    let parent = &segs[..segs.len().saturating_sub(1)];
    let diag = |message: String| src.diag(&segs, At::Value, message);
    // Messages name the key by its dotted path (`task[1].workers`): it is what to search for.
    let key = src.key(&segs);
    let in_inputs = matches!(parent, ["task", _, "inputs"]);

    let d = match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let accepted: Vec<&str> = schema_parent(e)
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let list = accepted.join(", ");
            return unexpected
                .iter()
                .map(|k| {
                    let mut at = segs.clone();
                    at.push(k);
                    let help = match did_you_mean(k, accepted.iter().copied()) {
                        Some(dym) => format!("{dym} (accepted keys: {list})"),
                        None => format!("accepted keys: {list}"),
                    };
                    src.diag(
                        &at,
                        At::Key,
                        format!("unknown key `{k}` {}", table_place(&segs)),
                    )
                    .with_help(help)
                })
                .collect();
        }
        ValidationErrorKind::PropertyNames { error } => {
            let name = shown(error.instance());
            let mut at = segs.clone();
            at.push(&name);
            return vec![src
                .diag(&at, At::Key, format!("invalid function name `{name}`"))
                .with_help("a function name starts with a letter or `_` and has only letters, digits, `_` and `-`")];
        }
        _ if e.schema_path().as_str().starts_with("/$defs/workers") => diag(format!(
            "`{key}` must be an integer from 1 to 1024 or \"num-cpus\", not {value}"
        )),
        ValidationErrorKind::OneOfNotValid { .. } if last == "inputs" => diag(format!(
            "`{key}` must be an array of values or a table with one of {INPUT_KEYS}, not {}",
            toml_type(value)
        ))
        .with_help(INPUTS_HELP),
        ValidationErrorKind::Required { property } => {
            let property = shown(property);
            if segs.is_empty() && property == "task" {
                diag("no `[[task]]` in the job file".into()).with_help(TASK_HELP)
            } else {
                let help = match (parent, property.as_str()) {
                    (["task"], "function") => Some(
                        "set `function` to a builtin's name (`runjobs functions` lists them) or \
                         a `[functions.NAME]` of this file",
                    ),
                    (["task"], "inputs") => Some(INPUTS_HELP),
                    (["functions"], "builtin") => {
                        Some("set `builtin` to a builtin's name (`runjobs functions` lists them)")
                    }
                    _ => None,
                };
                diag(format!("{} has no `{property}`", table_name(&segs)))
                    .with_help_opt(help.map(String::from))
            }
        }
        ValidationErrorKind::MinItems { .. } if segs == ["task"] => {
            diag("no `[[task]]` in the job file".into()).with_help(TASK_HELP)
        }
        ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MaxItems { .. }
            if last == "range" && in_inputs =>
        {
            let n = value.as_array().map_or(0, Vec::len);
            diag(format!("`{key}` needs 2 or 3 integers, found {n}"))
                .with_help("write [start, stop] or [start, stop, step], as Python's range()")
        }
        ValidationErrorKind::MinItems { .. } if parent.ends_with(&["matrix"]) => diag(format!(
            "`{key}` is empty, so the matrix has no combinations"
        ))
        .with_help("give it at least one value, or remove it"),
        ValidationErrorKind::MinProperties { .. } if last == "inputs" => diag(format!(
            "`{key}` is an empty table; it needs exactly one of {INPUT_KEYS}"
        ))
        .with_help(INPUTS_HELP),
        ValidationErrorKind::MaxProperties { .. } if last == "inputs" => {
            let keys = value
                .as_object()
                .map(|o| backticked(o.keys().map(String::as_str)));
            diag(format!(
                "`{key}` has {}; it needs exactly one of {INPUT_KEYS}",
                keys.unwrap_or_default()
            ))
            .with_help("use one source per task; to combine values use `matrix`, to chain tasks use `from`")
        }
        ValidationErrorKind::MinProperties { .. } if last == "matrix" => {
            diag(format!("`{key}` has no keys, so it has no combinations"))
                .with_help("for example `matrix = { x = [1, 2], lr = [0.1, 0.01] }`")
        }
        ValidationErrorKind::Format { format } if format == "duration" => {
            let why = humantime::parse_duration(&v)
                .err()
                .map_or(String::new(), |e| format!(": {e}"));
            diag(format!("invalid duration `{v}` for `{key}`{why}")).with_help(DURATION_HELP)
        }
        ValidationErrorKind::Format { format } if format == "cron" => {
            let why = cron_problem(&v).unwrap_or_default();
            diag(format!("invalid cron schedule `{v}` for `{key}`: {why}"))
                .with_help("for example \"*/15 * * * *\" (every 15 minutes) or \"0 3 * * MON-FRI\"")
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(shown)
                .collect();
            diag(format!("`{v}` is not a valid `{key}`")).with_help(format!(
                "expected one of {}",
                backticked(options.iter().map(String::as_str))
            ))
        }
        ValidationErrorKind::Type { .. } => {
            let expected = schema_parent(e).and_then(|s| s.get("type"));
            let expected = match expected {
                Some(Value::String(t)) => schema_type_name(t).to_string(),
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(schema_type_name)
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => "another type".into(),
            };
            let d = diag(format!(
                "`{key}` must be {expected}, not {}",
                toml_type(value)
            ));
            if segs == ["task"] {
                d.with_help(TASK_HELP)
            } else {
                d
            }
        }
        ValidationErrorKind::Minimum { .. } | ValidationErrorKind::Maximum { .. }
            if last == "retries" =>
        {
            diag(format!("`{key}` must be an integer from 0 to 100, not {v}"))
                .with_help("`retries` counts the extra attempts after a failed or timed-out item")
        }
        ValidationErrorKind::Minimum { limit } => {
            diag(format!("`{key}` must be at least {limit}, not {v}"))
        }
        ValidationErrorKind::Maximum { limit } => {
            diag(format!("`{key}` must be at most {limit}, not {v}"))
        }
        ValidationErrorKind::MinLength { .. } => diag(format!("`{key}` must not be empty")),
        ValidationErrorKind::Pattern { .. } if last == "file" && in_inputs => diag(format!(
            "`{key}` must name a .json, .jsonl, .ndjson or .csv file, not `{v}`"
        ))
        .with_help("for a text file with one item per line, use `lines`"),
        ValidationErrorKind::Pattern { .. } if last == "name" => diag(format!(
            "`{key}` may only have letters, digits, `_`, `.` and `-`, not `{v}`"
        ))
        .with_help("the name goes into file names and results"),
        // Anything the schema may grow: jsonschema's own words, still at the right place.
        _ => diag(format!("`{key}`: {e}")),
    };
    vec![d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_text_is_the_shipped_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/job.schema.json");
        let on_disk = std::fs::read_to_string(path).expect("schemas/job.schema.json is readable");
        assert_eq!(schema_text(), on_disk);
        assert!(jsonschema::meta::is_valid(schema()));
    }

    #[test]
    fn cron_takes_five_fields_only() {
        for ok in ["*/15 * * * *", "0 3 * * MON-FRI", "0 0 L * *", "@daily"] {
            assert_eq!(cron_problem(ok), None, "{ok}");
        }
        for bad in [
            "0 0 3 * * *",
            "0 0 3 * * * 2030",
            "61 * * * *",
            "* * *",
            "",
            "@nope",
        ] {
            assert!(cron_problem(bad).is_some(), "{bad}");
        }
    }
}
