//! `command = [...]`: one process per item, like xargs and GNU parallel. Renders the argv
//! templates for an item, and says what environment the task's processes get. The argv is
//! executed directly: no shell ever sees an input, and with `shell = true` the input reaches
//! the script as `$1`, never spliced into its text.

use std::path::Path;

use serde_json::Value;

use crate::job::{CommandSpec, StdinMode, Task};

/// The variables that differ from item to item (the rest are in `task_env`).
pub const ITEM_VARS: [&str; 2] = ["RUNJOBS_INPUT", "RUNJOBS_INDEX"];

/// A command ready to start for one item.
pub struct ItemCommand {
    /// The program, then its arguments.
    pub argv: Vec<String>,
    /// `RUNJOBS_INPUT` and `RUNJOBS_INDEX`, the values of `ITEM_VARS`.
    pub vars: [String; 2],
    /// What to write to its stdin.
    pub stdin: Option<Vec<u8>>,
}

impl ItemCommand {
    /// `ITEM_VARS` with their values.
    pub fn item_env(&self) -> [(&str, &str); 2] {
        [(ITEM_VARS[0], &self.vars[0]), (ITEM_VARS[1], &self.vars[1])]
    }
}

/// The environment every process of the task gets on top of runjobs' own: the task's `env`,
/// then `RUNJOBS_TASK` and `RUNJOBS_JOB` (later pairs win).
pub fn task_env<'a>(task: &'a Task, job: &'a str) -> Vec<(&'a str, &'a str)> {
    task.env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("RUNJOBS_TASK", task.name.as_str()), ("RUNJOBS_JOB", job)])
        .collect()
}

/// The input as text: a string as-is, anything else as compact JSON.
pub fn input_text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Builds the process for item `index` of `task` with `input`.
pub fn build(
    spec: &CommandSpec,
    task: &Task,
    index: u64,
    input: &Value,
) -> Result<ItemCommand, String> {
    let text = input_text(input);
    let argv: Vec<String> = if spec.shell {
        // `sh -c SCRIPT NAME ARG...`: NAME becomes $0, the input $1, extra arguments $2...
        // The script is used verbatim; only the extra arguments are templates.
        let mut argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            spec.argv.first().cloned().unwrap_or_default(),
            format!("runjobs:{}", task.name),
            text.clone(),
        ];
        for arg in spec.argv.iter().skip(1) {
            argv.push(render(arg, input, index)?);
        }
        argv
    } else {
        spec.argv
            .iter()
            .map(|arg| render(arg, input, index))
            .collect::<Result<_, _>>()?
    };
    if argv.is_empty() {
        return Err("the command is empty".to_owned());
    }
    let stdin = match spec.stdin {
        StdinMode::Null => None,
        StdinMode::Json => Some(format!("{input}\n").into_bytes()),
        StdinMode::Text => Some(format!("{text}\n").into_bytes()),
    };
    Ok(ItemCommand {
        argv,
        vars: [text, index.to_string()],
        stdin,
    })
}

/// Fills the placeholders of one argument: `{input}`, `{input.KEY}`, `{index}`, `{number}`
/// (the index from 1), and for path inputs `{input.stem}`, `{input.name}`, `{input.dir}`,
/// `{input.ext}`, `{input.noext}` (the path without its extension); `{{`/`}}` are
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
        "number" => return Ok((index + 1).to_string()),
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
    if key == "noext" {
        // The whole path without its extension (GNU parallel's `{.}`): `a/b.c/d.tar.gz`
        // reads `a/b.c/d.tar`; a name that is all extension (`.bashrc`) has none.
        let ext = path.extension().map_or(0, |e| e.len() + 1);
        let text = path.to_string_lossy();
        return Ok(text[..text.len() - ext].to_owned());
    }
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
            render("{input.noext}", &path, 3).unwrap(),
            "data/img/cat.photo"
        );
        assert_eq!(
            render("{input.noext}", &json!("a.b/c"), 0).unwrap(),
            "a.b/c"
        );
        assert_eq!(
            render("{input.noext}", &json!(".bashrc"), 0).unwrap(),
            ".bashrc"
        );
        assert_eq!(render("{number}/{index}", &path, 3).unwrap(), "4/3");
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
