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
use super::span::{At, Source, key_path, task_ref};

/// The job-file schema, byte for byte as shipped in `schemas/job.schema.json`.
pub fn schema_text() -> &'static str {
    include_str!("../../schemas/job.schema.json")
}

/// The schema runjobs validates with: the shipped one less its editor-only constraints.
fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = serde_json::from_str(schema_text()).expect("the embedded schema is JSON");
        strip_editor_only(&mut schema);
        schema
    })
}

/// Removes the `allOf` entries marked `"$comment": "editor"`. They state in JSON Schema what
/// runjobs' own checks find after the schema's (a builtin's name, a duration's or a size's
/// form, which keys a kind of function takes, a template's placeholders), so an editor or
/// `check-jsonschema` flags them as they are typed; runjobs leaves them to those checks,
/// whose messages point at the mistake and say what would be valid.
fn strip_editor_only(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(all)) = map.get_mut("allOf") {
                all.retain(|c| c.get("$comment").and_then(Value::as_str) != Some(EDITOR_ONLY));
                if all.is_empty() {
                    map.remove("allOf");
                }
            }
            map.values_mut().for_each(strip_editor_only);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_editor_only),
        _ => {}
    }
}

/// How the schema marks a constraint for editors only.
const EDITOR_ONLY: &str = "editor";

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_format("duration", |s: &str| humantime::parse_duration(s).is_ok())
            .with_format("cron", |s: &str| cron_problem(s).is_none())
            .with_format("memory-limit", |s: &str| memory_limit(s).is_ok())
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

/// The units a memory size may use, with their size in bytes (matched case-insensitively).
const MEMORY_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1000),
    ("KiB", 1 << 10),
    ("MB", 1000 * 1000),
    ("MiB", 1 << 20),
    ("GB", 1000 * 1000 * 1000),
    ("GiB", 1 << 30),
    ("TB", 1000 * 1000 * 1000 * 1000),
    ("TiB", 1 << 40),
];

/// The smallest memory limit: below this not even a shell or an interpreter can start, so every
/// item would fail in a confusing way.
const MIN_MEMORY: u64 = 1 << 20;

/// `limits.memory` in bytes: a number, an optional space and a unit (`"512MiB"`, `"2 GB"`,
/// `"1.5GiB"`). A fraction is allowed and rounded down to whole bytes; a unit is required (a
/// bare `"512"` is more likely MiB meant than bytes). At least 1 MiB.
pub fn memory_limit(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits_end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = (&s[..digits_end], s[digits_end..].trim_start());
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && frac.is_empty()) || frac.contains('.') {
        return Err("it must start with a number such as `512` or `1.5`".into());
    }
    if frac.len() > 9 {
        return Err("it has more than 9 decimals".into());
    }
    let Some(&(_, per_unit)) = MEMORY_UNITS
        .iter()
        .find(|(u, _)| u.eq_ignore_ascii_case(unit))
    else {
        let units = backticked(MEMORY_UNITS.iter().map(|(u, _)| *u));
        return Err(if unit.is_empty() {
            format!("it has no unit; add one of {units}")
        } else {
            format!("unknown unit `{unit}`; use one of {units}")
        });
    };
    // Exact integer arithmetic: (whole.frac × 10^k) × unit / 10^k, rounded down.
    let scale = 10u128.pow(frac.len() as u32);
    let bytes = format!("{whole}{frac}")
        .parse::<u128>()
        .ok()
        .and_then(|n| n.checked_mul(u128::from(per_unit)))
        .map(|n| n / scale)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| "it is too large".to_string())?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "it is {bytes} byte{}, below the minimum of 1MiB",
            if bytes == 1 { "" } else { "s" }
        ));
    }
    Ok(bytes)
}

/// Every schema problem of `instance` (the document as JSON), as diagnostics.
pub fn check(instance: &Value, src: &Source<'_>) -> Vec<Diagnostic> {
    let errors: Vec<ValidationError<'_>> = validator().iter_errors(instance).collect();
    let mut leaves = Vec::new();
    errors.iter().for_each(|e| explain(e, &mut leaves));
    leaves.into_iter().flat_map(|e| describe(e, src)).collect()
}

/// `instance` without the keys the schema does not know: what is left may be sound enough for
/// the semantic checks to run in the same pass as the schema's.
pub fn without_unknown_keys(instance: &Value) -> Value {
    let mut pruned = instance.clone();
    let errors: Vec<ValidationError<'_>> = validator().iter_errors(instance).collect();
    let mut leaves = Vec::new();
    errors.iter().for_each(|e| explain(e, &mut leaves));
    for e in leaves {
        if let ValidationErrorKind::AdditionalProperties { unexpected } = e.kind()
            && let Some(Value::Object(table)) = pruned.pointer_mut(e.instance_path().as_str())
        {
            for key in unexpected {
                table.remove(key);
            }
        }
    }
    pruned
}

/// For `oneOf`/`anyOf` failures, descend into the branch the user meant: one with no failed
/// `const` and no `type` mismatch at this path; else the branch with fewest errors. Keeps the
/// error itself where its own message is better than any branch's (`workers`, `inputs` of the
/// wrong type).
fn explain<'a>(e: &'a ValidationError<'a>, out: &mut Vec<&'a ValidationError<'a>>) {
    let context = match e.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context }
            if !e.schema_path().as_str().starts_with("/$defs/workers") && !is_function_kinds(e) =>
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

/// Whether `e` is the "exactly one kind key" rule of `[functions.NAME]`.
fn is_function_kinds(e: &ValidationError<'_>) -> bool {
    e.schema_path()
        .as_str()
        .starts_with("/$defs/function/oneOf")
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
/// "in `task[1]`".
fn table_place(segs: &[&str]) -> String {
    if segs.is_empty() {
        "at the top level".into()
    } else {
        format!("in {}", table_name(segs))
    }
}

/// How the user wrote the table at `segs`: "`[output]`"; a task by its path, "`task[1]`".
fn table_name(segs: &[&str]) -> String {
    match segs {
        ["functions", name] => format!("`[functions.{}]`", key_path(&[name], |_| false)),
        ["task", i] => task_ref(i),
        ["task", i, rest @ ..] => format!("`{}` of {}", rest.join("."), task_ref(i)),
        _ => format!("`[{}]`", segs.join(".")),
    }
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
/// Options a function or task may set but the job may not.
const PER_FUNCTION: [&str; 6] = [
    "env",
    "cwd",
    "limits",
    "max_items_per_worker",
    "fingerprint",
    "input",
];
const KIND_KEYS: &str = "`builtin`, `command`, `worker` or `python`";
const KINDS_HELP: &str = "`builtin = \"square\"` runs a runjobs builtin, \
                          `command = [\"prog\", \"{input}\"]` a program per item, \
                          `worker = [\"python3\", \"worker.py\"]` a JSON-lines worker, \
                          `python = \"fns.py:square_number\"` a Python function";
const RETRIES_HELP: &str = "for example `retries = 3` or `retries = { count = 3, backoff = \
                            \"exponential\", delay = \"1s\", on = [\"timeout\", \"crash\"] }`";
const TASK_HELP: &str = "add at least one task, for example:\n[[task]]\nfunction = \"square\"\n\
                         inputs = [1, 2, 3]";

/// One schema error as diagnostics (an `additionalProperties` error gives one per key).
fn describe(e: &ValidationError<'_>, src: &Source<'_>) -> Vec<Diagnostic> {
    let owned = segments(e);
    let segs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let error = SchemaError::new(e, src, &segs);
    match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => error.unknown_keys(unexpected),
        ValidationErrorKind::PropertyNames { error: name } => vec![error.bad_name(name.instance())],
        _ => {
            let d = error
                .shape()
                .or_else(|| error.size())
                .or_else(|| error.form())
                .or_else(|| error.bound())
                .or_else(|| error.text())
                // Anything the schema may grow: jsonschema's own words, still in place.
                .unwrap_or_else(|| error.diag(format!("`{}`: {e}", error.key)));
            vec![d]
        }
    }
}

/// A schema error and what its messages say of it.
struct SchemaError<'a> {
    e: &'a ValidationError<'a>,
    src: &'a Source<'a>,
    segs: &'a [&'a str],
    value: &'a Value,
    /// The value as the user would have written it.
    v: String,
    last: &'a str,
    parent: &'a [&'a str],
    /// The key's dotted path (`task[0].workers`): messages name it, as it is what to search for.
    key: String,
    in_inputs: bool,
}

impl<'a> SchemaError<'a> {
    fn new(e: &'a ValidationError<'a>, src: &'a Source<'a>, segs: &'a [&'a str]) -> Self {
        let parent = &segs[..segs.len().saturating_sub(1)];
        SchemaError {
            e,
            src,
            segs,
            value: e.instance(),
            v: shown(e.instance()),
            last: segs.last().copied().unwrap_or(""),
            parent,
            key: src.key(segs),
            in_inputs: matches!(parent, ["task", _, "inputs"]),
        }
    }

    fn diag(&self, message: String) -> Diagnostic {
        self.src.diag(self.segs, At::Value, message)
    }

    /// `unknown key` for each key the table does not take, with the closest accepted one.
    fn unknown_keys(&self, unexpected: &[String]) -> Vec<Diagnostic> {
        let (e, src, segs) = (self.e, self.src, self.segs.to_vec());
        let accepted: Vec<&str> = schema_parent(e)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let list = accepted.join(", ");
        unexpected
            .iter()
            .map(|k| {
                let mut at = segs.clone();
                at.push(k);
                let help = match did_you_mean(k, accepted.iter().copied()) {
                    Some(dym) => format!("{dym} (accepted keys: {list})"),
                    None if segs.is_empty() && PER_FUNCTION.contains(&k.as_str()) => format!(
                        "`{k}` is set per function or task, not for the whole job: move it \
                         into a `[functions.NAME]` or a `[[task]]` (accepted keys here: {list})"
                    ),
                    None => format!("accepted keys: {list}"),
                };
                src.diag(
                    &at,
                    At::Key,
                    format!("unknown key `{k}` {}", table_place(&segs)),
                )
                .with_help(help)
            })
            .collect()
    }

    /// A table key that is not a valid name (of an environment variable or a function).
    fn bad_name(&self, error: &Value) -> Diagnostic {
        let (src, segs, last) = (self.src, self.segs.to_vec(), self.last);
        let name = shown(error);
        let mut at = segs.clone();
        at.push(&name);
        let (message, help) = if last == "env" {
            (
                format!("invalid environment variable name `{name}`"),
                "a name must not be empty or contain `=`",
            )
        } else {
            (
                format!("invalid function name `{name}`"),
                "a function name starts with a letter or `_` and has only letters, digits, \
                 `_` and `-`",
            )
        };
        src.diag(&at, At::Key, message).with_help(help)
    }

    /// Function kinds, retries, workers and inputs of the wrong shape; missing keys.
    fn shape(&self) -> Option<Diagnostic> {
        let Self { e, value, key, .. } = self;
        let (segs, last, parent) = (self.segs, self.last, self.parent);
        Some(match e.kind() {
            ValidationErrorKind::OneOfNotValid { .. } if is_function_kinds(e) => self.diag(format!(
                "{} has no function kind: it needs exactly one of {KIND_KEYS}",
                table_name(segs)
            ))
            .with_help(KINDS_HELP),
            ValidationErrorKind::OneOfMultipleValid { .. } if is_function_kinds(e) => {
                let set: Vec<&str> = ["builtin", "command", "worker", "python"]
                    .into_iter()
                    .filter(|k| value.get(k).is_some())
                    .collect();
                self.diag(format!(
                    "{} has {} kind keys ({}); a function has exactly one of {KIND_KEYS}",
                    table_name(segs),
                    set.len(),
                    backticked(set.iter().copied())
                ))
                .with_help(format!("keep one and remove the others; {KINDS_HELP}"))
            }
            ValidationErrorKind::OneOfNotValid { .. } if last == "retries" => self.diag(format!(
                "`{key}` must be a count (an integer from 0 to 100) or a table, not {}",
                toml_type(value)
            ))
            .with_help(RETRIES_HELP),
            _ if e.schema_path().as_str().starts_with("/$defs/workers") => self.diag(format!(
                "`{key}` must be an integer from 1 to 1024 or \"num-cpus\", not {value}"
            )),
            ValidationErrorKind::OneOfNotValid { .. } if last == "inputs" => self.diag(format!(
                "`{key}` must be an array of values or a table with one of {INPUT_KEYS}, not {}",
                toml_type(value)
            ))
            .with_help(INPUTS_HELP),
            ValidationErrorKind::Required { property } => {
                let property = shown(property);
                if segs.is_empty() && property == "task" {
                    self.diag("no `[[task]]` in the job file".into()).with_help(TASK_HELP)
                } else {
                    let help = match (parent, property.as_str()) {
                        (["task"], "function") => Some(
                            "set `function` to a builtin's name (`runjobs functions` lists them) or \
                             a `[functions.NAME]` of this file",
                        ),
                        (["task"], "inputs") => Some(INPUTS_HELP),
                        _ if last == "retries" => Some(RETRIES_HELP),
                        _ => None,
                    };
                    let table = if last == "retries" {
                        format!("the `{key}` table")
                    } else {
                        table_name(segs)
                    };
                    self.diag(format!("{table} has no `{property}`"))
                        .with_help_opt(help.map(String::from))
                }
            }
            _ => return None,
        })
    }

    /// Arrays and tables with too few or too many entries.
    fn size(&self) -> Option<Diagnostic> {
        let Self { e, value, key, .. } = self;
        let (segs, last, parent, in_inputs) = (self.segs, self.last, self.parent, self.in_inputs);
        Some(match e.kind() {
            ValidationErrorKind::MinItems { .. } if segs == ["task"] => self
                .diag("no `[[task]]` in the job file".into())
                .with_help(TASK_HELP),
            ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MaxItems { .. }
                if last == "range" && in_inputs =>
            {
                let n = value.as_array().map_or(0, Vec::len);
                self.diag(format!("`{key}` needs 2 or 3 integers, found {n}"))
                    .with_help("write [start, stop] or [start, stop, step], as Python's range()")
            }
            ValidationErrorKind::MinItems { .. } if matches!(last, "command" | "worker") => self
                .diag(format!(
                    "`{key}` is empty; it needs at least the program to run"
                ))
                .with_help(if last == "command" {
                    "for example `command = [\"convert\", \"{input}\", \"-resize\", \"200x200\", \
                         \"thumbs/{input.stem}.png\"]`"
                } else {
                    "for example `worker = [\"python3\", \"worker.py\"]`"
                }),
            ValidationErrorKind::MinItems { .. } if last == "on" => self
                .diag(format!("`{key}` is empty, so no failure would be retried"))
                .with_help("leave `on` out to retry every kind of failure, or set `count = 0`"),
            ValidationErrorKind::MinItems { .. } if parent.ends_with(&["matrix"]) => self
                .diag(format!(
                    "`{key}` is empty, so the matrix has no combinations"
                ))
                .with_help("give it at least one value, or remove it"),
            ValidationErrorKind::MinProperties { .. } if last == "inputs" => self
                .diag(format!(
                    "`{key}` is an empty table; it needs exactly one of {INPUT_KEYS}"
                ))
                .with_help(INPUTS_HELP),
            ValidationErrorKind::MaxProperties { .. } if last == "inputs" => {
                let keys = value
                    .as_object()
                    .map(|o| backticked(o.keys().map(String::as_str)));
                self.diag(format!(
                    "`{key}` has {}; it needs exactly one of {INPUT_KEYS}",
                    keys.unwrap_or_default()
                ))
                .with_help("use one source per task; to combine values use `matrix`, to chain tasks use `from`")
            }
            ValidationErrorKind::MinProperties { .. } if last == "matrix" => self
                .diag(format!("`{key}` has no keys, so it has no combinations"))
                .with_help("for example `matrix = { x = [1, 2], lr = [0.1, 0.01] }`"),
            _ => return None,
        })
    }

    /// Strings of the wrong format, values outside an enum, values of the wrong type.
    fn form(&self) -> Option<Diagnostic> {
        let Self {
            e,
            segs,
            value,
            v,
            key,
            ..
        } = self;
        let (segs, last, parent) = (*segs, self.last, self.parent);
        Some(match e.kind() {
            ValidationErrorKind::Format { format } if format == "duration" => {
                let why = humantime::parse_duration(v)
                    .err()
                    .map_or(String::new(), |e| format!(": {e}"));
                self.diag(format!("invalid duration `{v}` for `{key}`{why}"))
                    .with_help(DURATION_HELP)
            }
            ValidationErrorKind::Format { format } if format == "memory-limit" => {
                let why = memory_limit(v).err().unwrap_or_default();
                let what = match last {
                    "memfree" => "memory size",
                    "max_output" => "size",
                    _ => "memory limit",
                };
                self.diag(format!("invalid {what} `{v}` for `{key}`: {why}")).with_help(
                    "for example \"512MiB\", \"2GiB\" or \"1.5 GB\" (KB, MB, GB count in 1000s; \
                     KiB, MiB, GiB in 1024s)",
                )
            }
            ValidationErrorKind::Format { format } if format == "cron" => {
                let why = cron_problem(v).unwrap_or_default();
                self.diag(format!("invalid cron schedule `{v}` for `{key}`: {why}"))
                    .with_help(
                        "for example \"*/15 * * * *\" (every 15 minutes) or \"0 3 * * MON-FRI\"",
                    )
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(shown)
                    .collect();
                self.diag(format!("`{v}` is not a valid `{key}`"))
                    .with_help(format!(
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
                let d = self.diag(format!(
                    "`{key}` must be {expected}, not {}",
                    toml_type(value)
                ));
                if segs == ["task"] {
                    d.with_help(TASK_HELP)
                } else if last == "memory" && parent.last() == Some(&"limits") {
                    d.with_help("write a size with a unit, e.g. `memory = \"512MiB\"`")
                } else if parent.last() == Some(&"env") {
                    d.with_help(format!(
                        "environment values are strings; quote it: `{last} = \"{v}\"`"
                    ))
                } else {
                    d
                }
            }
            _ => return None,
        })
    }

    /// Numbers out of range.
    fn bound(&self) -> Option<Diagnostic> {
        let Self { e, v, key, .. } = self;
        let (last, parent) = (self.last, self.parent);
        Some(match e.kind() {
            ValidationErrorKind::Minimum { .. } | ValidationErrorKind::Maximum { .. }
                if last == "retries" || (last == "count" && parent.last() == Some(&"retries")) =>
            {
                self.diag(format!("`{key}` must be an integer from 0 to 100, not {v}"))
                    .with_help(
                        "`retries` counts the extra attempts after a failed or timed-out item",
                    )
            }
            ValidationErrorKind::Minimum { limit } if last == "open_files" => self
                .diag(format!("`{key}` must be at least {limit}, not {v}"))
                .with_help(
                    "every process needs a few descriptors for stdin, stdout, stderr and the \
                     libraries it loads",
                ),
            ValidationErrorKind::Minimum { limit } if last == "max_items_per_worker" => self
                .diag(format!("`{key}` must be at least {limit}, not {v}"))
                .with_help("leave it out to keep each worker for the whole run"),
            ValidationErrorKind::Minimum { limit } => {
                self.diag(format!("`{key}` must be at least {limit}, not {v}"))
            }
            ValidationErrorKind::Maximum { limit } => {
                self.diag(format!("`{key}` must be at most {limit}, not {v}"))
            }
            ValidationErrorKind::ExclusiveMinimum { limit } if last == "load" => self
                .diag(format!("`{key}` must be more than {limit}, not {v}"))
                .with_help(
                    "the 1-minute load average per CPU under which items start, such as 1.5",
                ),
            ValidationErrorKind::ExclusiveMinimum { limit } => {
                self.diag(format!("`{key}` must be more than {limit}, not {v}"))
            }
            _ => return None,
        })
    }

    /// Strings that are empty or do not match their pattern.
    fn text(&self) -> Option<Diagnostic> {
        let Self { e, v, key, .. } = self;
        let (last, in_inputs) = (self.last, self.in_inputs);
        Some(match e.kind() {
            ValidationErrorKind::MinLength { .. } if last == "0" => self.diag(format!(
                "`{key}` must not be empty: the first element is the program to run"
            )),
            ValidationErrorKind::MinLength { .. } => {
                self.diag(format!("`{key}` must not be empty"))
            }
            ValidationErrorKind::Pattern { .. } if last == "file" && in_inputs => self
                .diag(format!(
                    "`{key}` must name a .json, .jsonl, .ndjson or .csv file, not `{v}`"
                ))
                .with_help("for a text file with one item per line, use `lines`"),
            ValidationErrorKind::Pattern { .. } if last == "max_failures" => self
                .diag(format!(
                    "`{key}` must be a count or a percentage of the items, not `{v}`"
                ))
                .with_help("for example `max_failures = 10` or `max_failures = \"5%\"`"),
            ValidationErrorKind::Pattern { .. } if last == "name" => self
                .diag(format!(
                    "`{key}` may only have letters, digits, `_`, `.` and `-`, not `{v}`"
                ))
                .with_help("the name goes into file names and results"),
            ValidationErrorKind::Pattern { .. } if last == "time" => self
                .diag(format!(
                    "`{key}` must be a time limit in Slurm's form, not `{v}`"
                ))
                .with_help(
                    "minutes (`30`), `HH:MM:SS` (`1:30:00`) or `DAYS-HH:MM:SS` (`2-00:00:00`)",
                ),
            ValidationErrorKind::Pattern { .. } if last == "mem" => self
                .diag(format!(
                    "`{key}` must be a memory size in Slurm's form, not `{v}`"
                ))
                .with_help("megabytes (`500`), or a number with K, M, G or T (`4G`)"),
            _ => return None,
        })
    }
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
        let shipped: Value = serde_json::from_str(schema_text()).unwrap();
        assert!(jsonschema::meta::is_valid(&shipped));
    }

    /// The editor's list of builtins is the builtin table's, so it cannot drift.
    #[test]
    fn the_schemas_builtin_names_are_the_builtin_table() {
        let shipped: Value = serde_json::from_str(schema_text()).unwrap();
        let builtin = &shipped["$defs"]["function"]["properties"]["builtin"]["allOf"][0];
        assert_eq!(builtin["$comment"], EDITOR_ONLY);
        let names: Vec<&str> = builtin["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(names, crate::builtins::names().collect::<Vec<_>>());
        // And runjobs itself validates without the editor's constraints.
        let text = schema().to_string();
        assert!(!text.contains("\"$comment\":\"editor\""), "{text}");
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

    #[test]
    fn memory_limits_take_decimal_and_binary_units() {
        for (text, bytes) in [
            ("512MiB", 536_870_912),
            ("1 GB", 1_000_000_000),
            ("1.5GiB", 1_610_612_736), // a fraction is fine, rounded down to whole bytes
            ("2gib", 2 << 30),         // units are case-insensitive
            (" 64 MiB ", 64 << 20),
            ("1048576B", 1 << 20), // exactly the minimum
            ("1.5000001 MB", 1_500_000),
            ("3TiB", 3 << 40),
            ("2000KB", 2_000_000),
        ] {
            assert_eq!(memory_limit(text), Ok(bytes), "{text}");
        }
        for (text, why) in [
            ("512", "no unit"),
            ("MiB", "start with a number"),
            ("1.MiB", "start with a number"),
            (".5GiB", "start with a number"),
            ("-1MiB", "start with a number"),
            ("1.2.3MiB", "start with a number"),
            ("1e3MB", "unknown unit `e3MB`"),
            ("512 MiBs", "unknown unit `MiBs`"),
            ("1048575 B", "below the minimum of 1MiB"),
            ("512KiB", "524288 bytes, below"),
            ("0GiB", "below"),
            ("99999999TiB", "too large"),
            ("1.0000000001GiB", "more than 9 decimals"),
        ] {
            let err = memory_limit(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    /// (instance path, keyword) of every schema error of a document, as `check` reports them
    /// (inside the `oneOf` branch the user meant).
    fn rejects(toml_text: &str) -> Vec<(String, String)> {
        let table: toml::Table = toml::from_str(toml_text).expect("test TOML parses");
        let instance = super::super::load::toml_to_json(toml::Value::Table(table));
        let errors: Vec<ValidationError<'_>> = validator().iter_errors(&instance).collect();
        let mut leaves = Vec::new();
        errors.iter().for_each(|e| explain(e, &mut leaves));
        leaves
            .iter()
            .map(|e| {
                let path = e.instance_path().as_str().to_string();
                (path, e.kind().keyword().to_string())
            })
            .collect()
    }

    #[test]
    fn schema_rejects_bad_function_kinds_and_options() {
        let task = "\n[[task]]\nfunction = \"f\"\ninputs = [1]\n";
        let cases: [(&str, &str, &str); 12] = [
            ("[functions.f]\ntimeout = \"1s\"", "/functions/f", "oneOf"),
            (
                "[functions.f]\nbuiltin = \"square\"\nworker = [\"w\"]",
                "/functions/f",
                "oneOf",
            ),
            (
                "[functions.f]\ncommand = []",
                "/functions/f/command",
                "minItems",
            ),
            (
                "[functions.f]\nworker = [\"\"]",
                "/functions/f/worker/0",
                "minLength",
            ),
            (
                "[functions.f]\ncommand = [\"a\", 1]",
                "/functions/f/command/1",
                "type",
            ),
            (
                "[functions.f]\ncommand = [\"a\"]\nstdin = \"yaml\"",
                "/functions/f/stdin",
                "enum",
            ),
            (
                "[functions.f]\nbuiltin = \"square\"\nenv = { A = 1 }",
                "/functions/f/env/A",
                "type",
            ),
            (
                "[functions.f]\nbuiltin = \"square\"\nlimits = { memory = \"1KiB\" }",
                "/functions/f/limits/memory",
                "format",
            ),
            (
                "[functions.f]\nbuiltin = \"square\"\nlimits = { open_files = 7 }",
                "/functions/f/limits/open_files",
                "minimum",
            ),
            (
                "[functions.f]\nbuiltin = \"square\"\nmax_items_per_worker = 0",
                "/functions/f/max_items_per_worker",
                "minimum",
            ),
            ("retries = { delay = \"1s\" }", "/retries", "required"),
            (
                "retries = { count = 1, backoff = \"linear\" }",
                "/retries/backoff",
                "enum",
            ),
        ];
        for (text, path, keyword) in cases {
            let errors = rejects(&format!("{text}{task}"));
            assert!(
                errors.iter().any(|(p, k)| p == path && k == keyword),
                "{text}: {errors:?}"
            );
        }
        let ok = "retries = { count = 1, backoff = \"exponential\", delay = \"1s\", \
                  max_delay = \"1m\", on = [\"crash\"] }\n[functions.f]\ncommand = [\"a\"]\n\
                  shell = true\nstdin = \"text\"\nstdout = \"lines\"\ncwd = \".\"\n\
                  env = { A = \"1\" }\nlimits = { memory = \"1MiB\", cpu = \"1s\", open_files = 8 }";
        assert_eq!(rejects(&format!("{ok}{task}")), []);
    }
}
