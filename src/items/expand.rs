//! Turns a task's `inputs` into its items, lazily where the source is large.
//!
//! Order is documented and stable: arrays in order, `range` ascending by step, `lines` and
//! `file` in file order, `glob` sorted by path, `matrix` with the last key varying fastest.
//! Never runs anything; a malformed element of a streamed file becomes an item error, not a
//! failed run.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

use crate::job::InputSpec;

/// A task's items: how many there will be (when cheap to know) and a lazy iterator.
pub struct Items {
    pub total: Option<u64>,
    pub iter: Box<dyn Iterator<Item = Result<Value, String>> + Send>,
    /// For a `range`: its start and step (item `k` is `start + k * step`), so the items can
    /// be handed out without a value each.
    pub steps: Option<(i64, i64)>,
}

impl Items {
    fn from_vec(values: Vec<Value>) -> Items {
        Items {
            total: Some(values.len() as u64),
            iter: Box::new(values.into_iter().map(Ok)),
            steps: None,
        }
    }
}

/// Expands `spec`. `from` inputs are taken from `earlier`, the outputs of a finished task.
pub fn expand(spec: &InputSpec, earlier: impl FnOnce(&str) -> Vec<Value>) -> Result<Items, String> {
    match spec {
        InputSpec::List(values) => Ok(Items::from_vec(values.clone())),
        InputSpec::Range { start, stop, step } => Ok(range(*start, *stop, *step)),
        InputSpec::Lines(path) => lines(path),
        InputSpec::File(path) => file(path),
        InputSpec::Glob { pattern, base } => glob(pattern, base).map(Items::from_vec),
        InputSpec::Matrix(axes) => Ok(Items::from_vec(matrix(axes))),
        InputSpec::From(task) => Ok(Items::from_vec(earlier(task))),
    }
}

/// Python's `range(start, stop, step)`, generated lazily.
fn range(start: i64, stop: i64, step: i64) -> Items {
    let span = i128::from(stop) - i128::from(start);
    let step_wide = i128::from(step);
    let count = if step == 0 || span == 0 || (span > 0) != (step > 0) {
        0
    } else {
        (span.abs() + step_wide.abs() - 1) / step_wide.abs()
    };
    let count = u64::try_from(count).unwrap_or(0);
    let iter = (0..count).map(move |i| {
        // start + i*step stays within [start, stop) so it fits in i64.
        let value = i128::from(start) + i128::from(i) * step_wide;
        Ok(Value::from(value as i64))
    });
    Items {
        total: Some(count),
        iter: Box::new(iter),
        steps: Some((start, step)),
    }
}

fn open(path: &Path) -> Result<BufReader<File>, String> {
    File::open(path)
        .map(|f| BufReader::with_capacity(64 * 1024, f))
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// Counts the lines of `path` that hold more than white space, without keeping them.
fn count_nonblank_lines(path: &Path) -> Result<u64, String> {
    let mut reader = open(path)?;
    let mut count = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(count),
            Ok(_) => count += u64::from(!line.trim_ascii().is_empty()),
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }
}

/// Streams the non-blank lines of `path`, each with its 1-based line number.
fn nonblank_lines(
    path: &Path,
) -> Result<impl Iterator<Item = (usize, io::Result<String>)> + use<>, String> {
    let reader = open(path)?;
    Ok(reader
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty())))
}

fn lines(path: &Path) -> Result<Items, String> {
    // A pipe (`/dev/stdin`, a FIFO) can be read only once: its lines stream uncounted.
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let total = if regular {
        Some(count_nonblank_lines(path)?)
    } else {
        None
    };
    let shown = path.display().to_string();
    let iter = nonblank_lines(path)?.map(move |(n, line)| match line {
        Ok(text) => Ok(Value::String(text.trim_end_matches('\r').to_owned())),
        Err(e) => Err(format!("`{shown}` line {n}: {e}")),
    });
    Ok(Items {
        total,
        iter: Box::new(iter),
        steps: None,
    })
}

fn file(path: &Path) -> Result<Items, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let shown = path.display().to_string();
    match ext.as_str() {
        "json" => {
            let reader = open(path)?;
            match serde_json::from_reader(reader) {
                Ok(Value::Array(values)) => Ok(Items::from_vec(values)),
                Ok(other) => Err(format!(
                    "`{shown}` must hold a JSON array of inputs, found {}",
                    json_type_name(&other)
                )),
                Err(e) => Err(format!("`{shown}` is not valid JSON: {e}")),
            }
        }
        "jsonl" | "ndjson" => {
            let total = count_nonblank_lines(path)?;
            let iter = nonblank_lines(path)?.map(move |(n, line)| {
                let text = line.map_err(|e| format!("`{shown}` line {n}: {e}"))?;
                serde_json::from_str(&text).map_err(|e| {
                    // The parser's own position is always its line 1: say the file's line.
                    let message = e.to_string();
                    let message = message.split(" at line ").next().unwrap_or(&message);
                    format!(
                        "`{shown}` line {n}, column {}: not valid JSON ({message})",
                        e.column()
                    )
                })
            });
            Ok(Items {
                total: Some(total),
                iter: Box::new(iter),
                steps: None,
            })
        }
        "csv" => csv_rows(path),
        _ => Err(format!(
            "`{shown}`: inputs files must end in .json, .jsonl or .csv"
        )),
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One table per CSV row, keyed by the header row; values stay strings, as Python's
/// `csv.DictReader` gives them.
fn csv_rows(path: &Path) -> Result<Items, String> {
    let shown = path.display().to_string();
    let reader = || {
        csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(|e| format!("cannot read `{shown}`: {e}"))
    };
    let total = reader()?.records().count() as u64;
    let mut rows = reader()?;
    let headers = rows
        .headers()
        .map_err(|e| format!("`{shown}`: bad header row: {e}"))?
        .clone();
    let iter = rows.into_records().map(move |record| {
        let record = record.map_err(|e| format!("`{shown}`: {e}"))?;
        let row: Map<String, Value> = headers
            .iter()
            .zip(record.iter())
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        Ok(Value::Object(row))
    });
    Ok(Items {
        total: Some(total),
        iter: Box::new(iter),
        steps: None,
    })
}

/// Matching paths, sorted, relative to the job folder when they are inside it (commands
/// and workers run there). Files only; a pattern ending in `/` matches folders only, as in
/// a shell. A path that would begin with `-` begins with `./` instead, so a command never
/// reads a file name as an option.
fn glob(pattern: &str, base: &Path) -> Result<Vec<Value>, String> {
    let folders = pattern.ends_with('/');
    // As in a shell, `*` does not match a leading dot (runjobs' own lock and journals).
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let matched = glob::glob_with(pattern.trim_end_matches('/'), options)
        .map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
    let mut found: Vec<String> = matched
        .filter_map(Result::ok)
        .filter(|p| if folders { p.is_dir() } else { p.is_file() })
        .map(|p| p.strip_prefix(base).map(Path::to_path_buf).unwrap_or(p))
        .map(|p| p.to_string_lossy().into_owned())
        .map(|p| {
            if p.starts_with('-') {
                format!("./{p}")
            } else {
                p
            }
        })
        .collect();
    found.sort();
    Ok(found.into_iter().map(Value::String).collect())
}

/// The cartesian product of the axes, one table per combination; the last axis varies
/// fastest (like nested for-loops in declaration order).
fn matrix(axes: &[(String, Vec<Value>)]) -> Vec<Value> {
    let mut combos: Vec<Map<String, Value>> = vec![Map::new()];
    for (key, values) in axes {
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                values.iter().map(move |v| {
                    let mut next = combo.clone();
                    next.insert(key.clone(), v.clone());
                    next
                })
            })
            .collect();
    }
    combos.into_iter().map(Value::Object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collect(items: Items) -> Vec<Value> {
        items.iter.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn range_matches_python() {
        let cases: &[(i64, i64, i64, Vec<i64>)] = &[
            (1, 5, 1, vec![1, 2, 3, 4]),
            (0, 10, 3, vec![0, 3, 6, 9]),
            (5, 0, -2, vec![5, 3, 1]),
            (5, 5, 1, vec![]),
            (5, 0, 1, vec![]),
            (i64::MAX - 2, i64::MAX, 1, vec![i64::MAX - 2, i64::MAX - 1]),
        ];
        for (start, stop, step, want) in cases {
            let items = range(*start, *stop, *step);
            assert_eq!(
                items.total,
                Some(want.len() as u64),
                "range({start}, {stop}, {step})"
            );
            let got: Vec<i64> = collect(items).iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(&got, want);
        }
    }

    #[test]
    fn huge_range_is_lazy() {
        let items = range(0, i64::MAX, 1);
        assert_eq!(items.total, Some(i64::MAX as u64));
        assert_eq!(items.iter.take(2).count(), 2);
    }

    #[test]
    fn matrix_last_key_varies_fastest() {
        let axes = vec![
            ("x".to_owned(), vec![json!(1), json!(2)]),
            ("lr".to_owned(), vec![json!(0.1), json!(0.01)]),
        ];
        let got = matrix(&axes);
        assert_eq!(
            got,
            vec![
                json!({"x": 1, "lr": 0.1}),
                json!({"x": 1, "lr": 0.01}),
                json!({"x": 2, "lr": 0.1}),
                json!({"x": 2, "lr": 0.01}),
            ]
        );
        // Key order in each table follows the declaration.
        assert_eq!(
            got[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["x", "lr"]
        );
    }

    #[test]
    fn jsonl_bad_line_is_an_item_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        std::fs::write(&path, "1\n\n{oops\n\"x\"\n").unwrap();
        let items = file(&path).unwrap();
        assert_eq!(items.total, Some(3));
        let got: Vec<_> = items.iter.collect();
        assert_eq!(got[0], Ok(json!(1)));
        assert!(got[1].as_ref().unwrap_err().contains("line 3"), "{got:?}");
        assert_eq!(got[2], Ok(json!("x")));
    }

    #[test]
    fn csv_rows_become_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, "name,size\na,1\nb,2\n").unwrap();
        let items = file(&path).unwrap();
        assert_eq!(items.total, Some(2));
        assert_eq!(
            collect(items),
            vec![
                json!({"name": "a", "size": "1"}),
                json!({"name": "b", "size": "2"})
            ]
        );
    }

    #[test]
    fn lines_skip_blank_lines_and_strip_cr() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("urls.txt");
        std::fs::write(&path, "a\r\n\n  \nb c\n").unwrap();
        let items = lines(&path).unwrap();
        assert_eq!(items.total, Some(2));
        assert_eq!(collect(items), vec![json!("a"), json!("b c")]);
    }

    #[test]
    fn lines_of_a_pipe_are_read_once_uncounted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || std::fs::write(path, "a\n\nb\n"))
        };
        let items = lines(&path).unwrap();
        assert_eq!(items.total, None);
        assert_eq!(collect(items), vec![json!("a"), json!("b")]);
        writer.join().unwrap().unwrap();
    }

    #[test]
    fn glob_is_sorted_and_relative() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.csv", "c.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let pattern = format!("{}/*.csv", dir.path().display());
        assert_eq!(
            glob(&pattern, dir.path()).unwrap(),
            vec![json!("a.csv"), json!("b.csv")]
        );
    }
}
