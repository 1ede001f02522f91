//! A one-liner's input groups → the job file's `inputs`: `::: V...` a list, `:::: FILE` a
//! `lines` file, several groups a `matrix` keyed "1", "2", … (the last group varies fastest,
//! as in GNU parallel), standard input `lines = "/dev/stdin"` (streamed as it comes; for
//! `--save`, a list written out). Lines are taken as `lines` takes them: blank ones are no
//! input.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use super::words::Source;

/// The most inputs from standard input `--save` writes into a job file.
pub const SAVED_STDIN_ITEMS: usize = 10_000;
/// The most bytes of them.
pub const SAVED_STDIN_BYTES: usize = 1024 * 1024;

/// How the inputs are read.
pub struct Reading<'a> {
    /// `-0`: standard input holds NUL-separated inputs.
    pub null: bool,
    /// For `--save`: standard input is gone once this run is over.
    pub saving: bool,
    /// Relative file names are written against this folder (the saved file lives elsewhere).
    pub anchor: Option<&'a Path>,
}

/// The job's `inputs`, as TOML text.
pub fn inputs(sources: &[Source], how: &Reading<'_>) -> Result<String, String> {
    if let [source] = sources {
        return one_group(source, how);
    }
    let mut axes = Vec::with_capacity(sources.len());
    for (n, source) in sources.iter().enumerate() {
        let values = match source {
            Source::Values(values) => values.clone(),
            Source::File(path) => read_lines(&mut open(path)?, &path.display().to_string())?,
            Source::Stdin => read_stdin(how.null, None)?,
        };
        axes.push(format!("\"{}\" = {}", n + 1, list(&values)));
    }
    Ok(format!("{{ matrix = {{ {} }} }}", axes.join(", ")))
}

fn one_group(source: &Source, how: &Reading<'_>) -> Result<String, String> {
    match source {
        Source::Values(values) => Ok(list(values)),
        Source::File(path) => {
            // Checked here, so the message names the file as the user wrote it.
            open(path)?;
            lines_of(&anchored(path, how.anchor))
        }
        Source::Stdin if how.null || how.saving => {
            let limit = how.saving.then_some(SAVED_STDIN_ITEMS);
            Ok(list(&read_stdin(how.null, limit)?))
        }
        // Streamed: the first item starts with the first line, as in parallel.
        Source::Stdin => lines_of(Path::new("/dev/stdin")),
    }
}

fn lines_of(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("the path `{}` is not UTF-8", path.display()))?;
    Ok(format!("{{ lines = {} }}", quoted(text)))
}

fn open(path: &Path) -> Result<io::BufReader<std::fs::File>, String> {
    std::fs::File::open(path)
        .map(io::BufReader::new)
        .map_err(|e| format!("cannot read the inputs file `{}`: {e}", path.display()))
}

/// Standard input's inputs: NUL-separated or lines; at most `limit` of them (`--save`).
fn read_stdin(null: bool, limit: Option<usize>) -> Result<Vec<String>, String> {
    let mut stdin = io::stdin().lock();
    let values = if null {
        let mut bytes = Vec::new();
        stdin
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        bytes
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .enumerate()
            .map(|(n, v)| {
                String::from_utf8(v.to_vec())
                    .map_err(|_| format!("input {} on standard input is not UTF-8", n + 1))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        read_lines(&mut stdin, "standard input")?
    };
    if let Some(limit) = limit {
        let bytes: usize = values.iter().map(String::len).sum();
        if values.len() > limit || bytes > SAVED_STDIN_BYTES {
            return Err(format!(
                "standard input holds {} inputs ({bytes} bytes): too many to write into a job \
                 file (at most {limit}, {} KiB); save them to a file and use `:::: FILE`",
                values.len(),
                SAVED_STDIN_BYTES / 1024
            ));
        }
    }
    Ok(values)
}

/// The lines `lines` would take: not blank, without a trailing CR, UTF-8.
fn read_lines(reader: &mut dyn BufRead, shown: &str) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("`{shown}` line {}: {e}", n + 1))?;
        if !line.trim().is_empty() {
            values.push(line.trim_end_matches('\r').to_owned());
        }
    }
    Ok(values)
}

/// A TOML array of strings: on one line when short, else one value a line.
pub fn list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| quoted(v)).collect();
    let width: usize = quoted.iter().map(|q| q.len() + 2).sum();
    if width <= 80 {
        format!("[{}]", quoted.join(", "))
    } else {
        format!("[\n    {},\n]", quoted.join(",\n    "))
    }
}

/// A TOML basic string.
pub fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// `path` as a saved job file in another folder must name it.
pub fn anchored(path: &Path, anchor: Option<&Path>) -> PathBuf {
    match anchor {
        Some(folder) if path.is_relative() => folder.join(path),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_become_a_matrix_keyed_by_their_number() {
        let how = Reading {
            null: false,
            saving: false,
            anchor: None,
        };
        let sources = [
            Source::Values(vec!["a".into(), "b".into()]),
            Source::Values(vec!["1".into()]),
        ];
        let got = inputs(&sources, &how).unwrap();
        assert_eq!(got, r#"{ matrix = { "1" = ["a", "b"], "2" = ["1"] } }"#);
        let long: Vec<String> = (0..30).map(|i| format!("value-{i}")).collect();
        assert!(list(&long).starts_with("[\n    \"value-0\",\n"));
    }

    #[test]
    fn lines_files_are_read_as_lines_reads_them() {
        let mut text: &[u8] = b"a\r\n\n  \nb c\n";
        assert_eq!(read_lines(&mut text, "x").unwrap(), ["a", "b c"]);
    }
}
