//! The job file a one-liner is: the text `--save` writes, and the text `runjobs exec` itself
//! loads through the normal loader, so that running the saved file gives the same results.

use std::fmt::Write as _;
use std::path::Path;

use super::inputs::{list, quoted};
use crate::cli::{ExecArgs, ExecutorArg, FormatArg};

/// What goes into the job file besides the flags.
pub struct Parts<'a> {
    /// The `#:schema` reference.
    pub schema: &'a str,
    /// The command line it came from, for the comment.
    pub line: &'a [String],
    /// The function's (and task's) name.
    pub name: &'a str,
    /// The job's name, when the file's name is not it (a job that is run, not saved).
    pub job_name: Option<&'a str>,
    pub command: &'a [String],
    /// The `inputs` value, as TOML.
    pub inputs: &'a str,
    /// The folder commands run in, when it is not the job file's.
    pub cwd: Option<&'a Path>,
    /// `[output] path`, as the job file must name it.
    pub output: Option<&'a Path>,
    /// Keep no output in the records: they go nowhere (a run without `-o`).
    pub ignore_stdout: bool,
}

/// The job file's text.
pub fn render(parts: &Parts<'_>, args: &ExecArgs) -> Result<String, String> {
    let mut text = format!("#:schema {}\n", parts.schema);
    text += "# Written by `runjobs exec --save` from:\n";
    let _ = writeln!(text, "#   {}", shell_words(parts.line));
    let mut top = Vec::new();
    if let Some(name) = parts.job_name {
        top.push(format!("name = {}", quoted(name)));
    }
    if let Some(n) = args.workers {
        top.push(format!("workers = {n}"));
    }
    if let Some(timeout) = &args.timeout {
        top.push(format!("timeout = {}", quoted(timeout)));
    }
    if let Some(n) = args.retries {
        top.push(format!("retries = {n}"));
    }
    if args.fail_fast {
        top.push("max_failures = 0  # --fail-fast".to_owned());
    }
    for line in top {
        text += &line;
        text.push('\n');
    }
    if args.memfree.is_some() || args.load.is_some() {
        text += "\n[admit]\n";
        if let Some(memfree) = &args.memfree {
            let _ = writeln!(text, "memfree = {}", quoted(memfree));
        }
        if let Some(load) = args.load {
            let _ = writeln!(text, "load = {load:?}");
        }
    }
    if args.executor == Some(ExecutorArg::Slurm) {
        text += "\n[executor]\nkind = \"slurm\"\n";
    }
    if let Some(path) = parts.output {
        let _ = write!(text, "\n[output]\npath = {}\n", quoted(utf8(path)?));
        if let Some(format) = args.format {
            let name = match format {
                FormatArg::Json => "json",
                FormatArg::Toml => "toml",
                FormatArg::Jsonl => "jsonl",
            };
            let _ = writeln!(text, "format = \"{name}\"");
        }
    }
    let _ = write!(
        text,
        "\n[functions.{}]\ncommand = {}\n",
        parts.name,
        list(parts.command)
    );
    if args.shell {
        text += "shell = true\n";
    }
    if parts.ignore_stdout {
        text += "stdout = \"ignore\"\n";
    }
    if let Some(cwd) = parts.cwd {
        let _ = writeln!(text, "cwd = {}", quoted(utf8(cwd)?));
    }
    let _ = write!(
        text,
        "\n[[task]]\nfunction = \"{}\"\ninputs = {}\n",
        parts.name, parts.inputs
    );
    Ok(text)
}

fn utf8(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("the path `{}` is not UTF-8", path.display()))
}

/// The words as a shell would take them back, on one line (control characters escaped).
pub fn shell_words(words: &[String]) -> String {
    let plain = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
    };
    let quote = |w: &String| {
        if plain(w) {
            w.clone()
        } else if w.chars().any(char::is_control) {
            let escaped: String = w
                .chars()
                .map(|c| match c {
                    '\n' => "\\n".to_owned(),
                    '\t' => "\\t".to_owned(),
                    '\'' => "\\'".to_owned(),
                    '\\' => "\\\\".to_owned(),
                    c if c.is_control() => format!("\\x{:02x}", c as u32),
                    c => c.to_string(),
                })
                .collect();
            format!("$'{escaped}'")
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_as_a_shell_reads_them() {
        let words: Vec<String> = [
            "runjobs", "exec", "echo", "{}", "a b", "it's", "l1\nl2", ":::",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shell_words(&words),
            r#"runjobs exec echo '{}' 'a b' 'it'\''s' $'l1\nl2' :::"#
        );
    }
}
