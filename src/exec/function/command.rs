//! `command = [...]`: one process per item, like xargs and GNU parallel. Renders the argv
//! templates for an item and builds its `Command`. The argv is executed directly: no shell
//! ever sees an input, and with `shell = true` the input reaches the script as `$1`, never
//! spliced into its text.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::job::{CommandSpec, StdinMode, Task};

/// A command ready to spawn for one item, and what to write to its stdin.
pub struct ItemCommand {
    pub command: Command,
    pub stdin: Option<Vec<u8>>,
}

/// The input as text: a string as-is, anything else as compact JSON.
pub fn input_text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Builds the process for item `index` with `input`.
pub fn build(
    spec: &CommandSpec,
    task: &Task,
    job: &str,
    index: u64,
    input: &Value,
) -> Result<ItemCommand, String> {
    let text = input_text(input);
    let rendered: Vec<String> = if spec.shell {
        // The script is used verbatim; only the extra arguments are templates.
        let mut args = vec![spec.argv.first().cloned().unwrap_or_default()];
        for arg in spec.argv.iter().skip(1) {
            args.push(render(arg, input, index)?);
        }
        args
    } else {
        spec.argv
            .iter()
            .map(|arg| render(arg, input, index))
            .collect::<Result<_, _>>()?
    };
    let mut command = if spec.shell {
        let mut cmd = Command::new("sh");
        // `sh -c SCRIPT NAME ARG...`: NAME becomes $0, the input $1, extra arguments $2...
        cmd.arg("-c")
            .arg(&rendered[0])
            .arg(format!("runjobs:{}", task.name))
            .arg(&text);
        cmd.args(&rendered[1..]);
        cmd
    } else {
        let (program, args) = rendered.split_first().ok_or("the command is empty")?;
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    };
    command
        .current_dir(&task.cwd)
        .envs(&task.env)
        .env("RUNJOBS_INPUT", &text)
        .env("RUNJOBS_INDEX", index.to_string())
        .env("RUNJOBS_TASK", &task.name)
        .env("RUNJOBS_JOB", job);
    let stdin = match spec.stdin {
        StdinMode::Null => None,
        StdinMode::Json => Some(format!("{input}\n").into_bytes()),
        StdinMode::Text => Some(format!("{text}\n").into_bytes()),
    };
    Ok(ItemCommand { command, stdin })
}

/// Fills the placeholders of one argument: `{input}`, `{input.KEY}`, `{index}`, and for
/// path inputs `{input.stem}`, `{input.name}`, `{input.dir}`, `{input.ext}`; `{{`/`}}` are
/// literal braces. The loader already rejected unknown placeholders, so an error here is
/// about this item's input (a missing key, say).
pub fn render(template: &str, input: &Value, index: u64) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("unmatched `}}` in `{template}`"));
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        out.push_str(&placeholder(&tail[1..end], input, index)?);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder(name: &str, input: &Value, index: u64) -> Result<String, String> {
    match name {
        "input" => return Ok(input_text(input)),
        "index" => return Ok(index.to_string()),
        _ => {}
    }
    let Some(key) = name.strip_prefix("input.") else {
        return Err(format!("unknown placeholder `{{{name}}}`"));
    };
    if let Value::Object(map) = input {
        return map
            .get(key)
            .map(input_text)
            .ok_or_else(|| format!("`{{{name}}}`: the input has no key `{key}`"));
    }
    let Value::String(path) = input else {
        return Err(format!(
            "`{{{name}}}` needs a table or a path input, got {input}"
        ));
    };
    let path = Path::new(path);
    let part = match key {
        "stem" => path.file_stem(),
        "name" => path.file_name(),
        "ext" => path.extension(),
        "dir" => {
            let dir = path.parent().map(Path::as_os_str).filter(|d| !d.is_empty());
            return Ok(dir.map_or_else(|| ".".to_owned(), |d| d.to_string_lossy().into_owned()));
        }
        _ => {
            return Err(format!(
                "`{{{name}}}` needs a table input, got the string `{}`",
                path.display()
            ));
        }
    };
    // A file named `-rf` must not pass for an option: its name reads `./-rf`.
    Ok(part
        .map(|p| p.to_string_lossy().into_owned())
        .map(|p| {
            if p.starts_with('-') {
                format!("./{p}")
            } else {
                p
            }
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_render() {
        let path = json!("data/img/cat.photo.png");
        assert_eq!(
            render("{input}", &path, 3).unwrap(),
            "data/img/cat.photo.png"
        );
        assert_eq!(
            render("thumbs/{input.stem}.jpg", &path, 3).unwrap(),
            "thumbs/cat.photo.jpg"
        );
        assert_eq!(
            render("{input.name}|{input.dir}|{input.ext}|{index}", &path, 3).unwrap(),
            "cat.photo.png|data/img|png|3"
        );
        assert_eq!(render("{input.dir}", &json!("a.txt"), 0).unwrap(), ".");
        assert_eq!(
            render("{{literal}} {input.x}", &json!({"x": 1.5}), 0).unwrap(),
            "{literal} 1.5"
        );
        assert_eq!(
            render("{input}", &json!({"a": [1]}), 0).unwrap(),
            r#"{"a":[1]}"#
        );
    }

    #[test]
    fn bad_placeholders_are_item_errors() {
        assert!(
            render("{input.missing}", &json!({"a": 1}), 0)
                .unwrap_err()
                .contains("no key `missing`")
        );
        assert!(render("{input.stem}", &json!(5), 0).is_err());
        assert!(render("{oops}", &json!(5), 0).is_err());
        assert!(render("{input", &json!(5), 0).is_err());
        assert!(render("a}b", &json!(5), 0).is_err());
    }

    #[test]
    fn inputs_are_never_split_or_interpreted() {
        let nasty = json!("$(touch X); rm -rf / `id` 'q' \"d\"");
        assert_eq!(
            render("{input}", &nasty, 0).unwrap(),
            "$(touch X); rm -rf / `id` 'q' \"d\""
        );
    }
}
