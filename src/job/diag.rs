//! Job-file diagnostics: what went wrong, where, and what to do about it, rendered the way
//! cargo renders its errors (`error: …`, ` --> file:line:col`, the source line, carets, help).
//!
//! This module only holds and prints diagnostics. It does not parse TOML or know the schema;
//! `span.rs` turns positions into diagnostics and `schema.rs`/`resolve.rs` write the messages.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The job file as the user named it.
    pub path: PathBuf,
    /// 1-based line; 0 for a problem with the whole file (it cannot be read).
    pub line: usize,
    /// 1-based column in chars; 0 with `line`.
    pub col: usize,
    /// Dotted key path such as `task[0].inputs.range` (a bracket holds a 0-based index, like
    /// a result's `index`, and the messages name tasks the same way); empty for the whole
    /// file.
    pub key: String,
    /// A lowercase phrase with names in backticks.
    pub message: String,
    pub help: Option<String>,
    pub snippet: Option<Snippet>,
}

/// The source line a diagnostic points at and the part of it to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The line's text, without its line break.
    pub text: String,
    /// 0-based char offset of the first underlined char.
    pub start: usize,
    /// Number of chars to underline; at least 1.
    pub len: usize,
}

impl Diagnostic {
    /// A problem with the file as a whole, e.g. it cannot be read.
    pub fn file(path: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: path.to_path_buf(),
            line: 0,
            col: 0,
            key: String::new(),
            message: message.into(),
            help: None,
            snippet: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds `help`, or does nothing when there is none (for the did-you-mean helpers).
    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let gutter = " ".repeat(self.line.max(1).to_string().len());
        if self.line == 0 {
            write!(f, "{gutter}--> {}", self.path.display())?;
        } else {
            write!(
                f,
                "{gutter}--> {}:{}:{}",
                self.path.display(),
                self.line,
                self.col
            )?;
        }
        if let Some(s) = &self.snippet {
            // Keep the line's tabs in the caret line so the carets stay under the right chars.
            let pad: String = s
                .text
                .chars()
                .take(s.start)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{gutter} |\n{} | {}", self.line, s.text)?;
            write!(f, "\n{gutter} | {pad}{}", "^".repeat(s.len.max(1)))?;
        }
        // Tests and users grep for the key path; say it unless the message already does.
        if !self.key.is_empty() && !self.message.contains(&format!("`{}`", self.key)) {
            write!(f, "\n{gutter} = key: {}", self.key)?;
        }
        if let Some(help) = &self.help {
            let indent = format!("\n{gutter}         ");
            write!(f, "\n{gutter} = help: {}", help.replace('\n', &indent))?;
        }
        Ok(())
    }
}

/// Every problem found in one job file, sorted by position.
#[derive(Debug, Clone)]
pub struct JobFileErrors {
    path: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

impl JobFileErrors {
    /// Sorts by position so the report reads top to bottom, whichever check found what.
    pub fn new(path: &Path, mut diagnostics: Vec<Diagnostic>) -> JobFileErrors {
        diagnostics.sort_by_key(|d| (d.line, d.col));
        diagnostics.dedup();
        JobFileErrors {
            path: path.to_path_buf(),
            diagnostics,
        }
    }

    #[allow(dead_code, reason = "public API; the binary only prints the errors")]
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    #[allow(dead_code, reason = "public API; the binary only prints the errors")]
    pub fn len(&self) -> usize {
        self.diagnostics.len()
    }

    #[allow(dead_code, reason = "public API; the binary only prints the errors")]
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

impl fmt::Display for JobFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}\n")?;
        }
        let n = self.diagnostics.len();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "error: could not load `{}` due to {n} previous error{s}",
            self.path.display()
        )
    }
}

impl std::error::Error for JobFileErrors {}

/// The candidate closest to `name`, if it is close enough to be a likely typo
/// (cargo `src/util/edit_distance.rs`: at most a third of the name's length).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max = name.chars().count().max(3) / 3;
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= max)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// "did you mean `X`?" when some candidate is close to `name`.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Edit distance over chars with adjacent swaps counting as one edit (`jbo` → `job`), and
/// case-insensitive (a stray capital is a typo too).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let subst = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = subst.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Names as a list in backticks: "`a`, `b`, `c`".
pub fn backticked<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let keys = ["name", "function", "inputs", "workers", "timeout"];
        assert_eq!(closest("timout", keys), Some("timeout"));
        assert_eq!(closest("Workers", keys), Some("workers"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(closest("fucntion", keys), Some("function"));
        assert_eq!(closest("jbo", ["job", "date", "timestamp"]), Some("job"));
        assert_eq!(closest("", keys), None);
    }

    #[test]
    fn renders_like_cargo() {
        let d = Diagnostic {
            path: "jobs/images.toml".into(),
            line: 7,
            col: 1,
            key: "task[0].timout".into(),
            message: "unknown key `timout` in `task[0]`".into(),
            help: Some("did you mean `timeout`?".into()),
            snippet: Some(Snippet {
                text: "timout = \"5s\"".into(),
                start: 0,
                len: 6,
            }),
        };
        let want = "error: unknown key `timout` in `task[0]`\n --> jobs/images.toml:7:1\n  |\n7 | timout = \"5s\"\n  | ^^^^^^\n  = key: task[0].timout\n  = help: did you mean `timeout`?";
        assert_eq!(d.to_string(), want);
        let all = JobFileErrors::new(Path::new("jobs/images.toml"), vec![d]);
        assert!(
            all.to_string()
                .ends_with("\n\nerror: could not load `jobs/images.toml` due to 1 previous error")
        );
    }
}
