//! Command templates, `format` templates and shell scripts: which placeholders they may use.

use super::*;

/// What a template may hold: these placeholders, and `{input.KEY}`.
pub(super) struct TemplateKind {
    placeholders: &'static [&'static str],
    help: &'static str,
}

pub(super) const COMMAND_TEMPLATE: TemplateKind = TemplateKind {
    placeholders: &ARG_PLACEHOLDERS,
    help: ARG_HELP,
};

/// The `format` builtin's `template`.
pub(super) const FORMAT_TEMPLATE: TemplateKind = TemplateKind {
    placeholders: &["input"],
    help: "a `format` template may use `{input}` and `{input.KEY}`; write `{{` and `}}` for \
           literal braces",
};

/// Problems in a command argument template: unknown or empty placeholders, unclosed `{`,
/// unmatched `}`. `{{` and `}}` are literal braces.
/// The problems of a command argument's template.
pub(super) fn template_problems(arg: &str) -> Vec<Problem> {
    problems_of_template(arg, &COMMAND_TEMPLATE)
}

pub(super) fn problems_of_template(arg: &str, kind: &TemplateKind) -> Vec<Problem> {
    let b = arg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'{', Some(b'{')) | (b'}', Some(b'}')) => i += 2,
            (b'{', _) => match arg[i + 1..].find(['{', '}']).map(|o| i + 1 + o) {
                Some(close) if b[close] == b'}' => {
                    out.extend(placeholder_problem(&arg[i + 1..close], i..close + 1, kind));
                    i = close + 1;
                }
                next => {
                    // Another `{` before any `}`: most likely a literal brace (JSON, say).
                    let (message, help) = match next {
                        Some(_) => (
                            format!("unescaped `{{` in `{arg}`"),
                            "write `{{` for a literal `{` and `}}` for a literal `}`".to_string(),
                        ),
                        None => (
                            format!("unclosed `{{` in `{arg}`"),
                            format!(
                                "close it, or write `{{{{` for a literal `{{`; {}",
                                kind.help
                            ),
                        ),
                    };
                    out.push(Problem {
                        range: i..i + 1,
                        message,
                        help,
                    });
                    i += 1;
                }
            },
            (b'}', _) => {
                out.push(Problem {
                    range: i..i + 1,
                    message: format!("unmatched `}}` in `{arg}`"),
                    help: "write `}}` for a literal `}`".into(),
                });
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The problem with placeholder `{name}` (at `range`), if it is not one a command may use.
pub(super) fn placeholder_problem(
    name: &str,
    range: Range<usize>,
    kind: &TemplateKind,
) -> Option<Problem> {
    let is_field = name
        .strip_prefix("input.")
        .is_some_and(|key| !key.is_empty());
    if kind.placeholders.contains(&name) || is_field {
        return None;
    }
    let message = if name.is_empty() {
        "empty placeholder `{}`".to_string()
    } else {
        format!("unknown placeholder `{{{name}}}`")
    };
    let dym = closest(name, kind.placeholders.iter().copied())
        .map(|c| format!("did you mean `{{{c}}}`? "));
    Some(Problem {
        range,
        message,
        help: format!("{}{}", dym.unwrap_or_default(), kind.help),
    })
}

/// Placeholders in a `shell = true` script. The script is never a template (the shell has its
/// own braces: `${VAR}`, `{a,b}`, awk's `{print}`), so only our placeholder names are flagged,
/// and not after `$` (`${input}` is a shell variable).
pub(super) fn script_problems(script: &str) -> Vec<Problem> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    for (i, _) in script.match_indices('{') {
        if i > 0 && matches!(b[i - 1], b'$' | b'{') {
            continue;
        }
        let Some(len) = script[i + 1..].find('}') else {
            continue;
        };
        let name = &script[i + 1..i + 1 + len];
        let field = name.strip_prefix("input.");
        let ours = matches!(name, "input" | "index" | "number")
            || field.is_some_and(|k| !k.is_empty() && !k.contains(char::is_whitespace));
        if !ours {
            continue;
        }
        let instead = match (name, field) {
            ("index", _) => "the item's index is in \"$RUNJOBS_INDEX\"".to_string(),
            ("number", _) => "the item's number is \"$((RUNJOBS_INDEX + 1))\"".to_string(),
            (_, Some(_)) => format!(
                "to use `{{{name}}}`, add it as another element of `command` (after the \
                 script, it arrives as \"$2\", \"$3\", …)"
            ),
            _ => "write \"$1\" instead".to_string(),
        };
        out.push(Problem {
            range: i..i + len + 2,
            message: format!("placeholder `{{{name}}}` in a shell script"),
            help: format!(
                "with shell = true the input is $1 (never spliced into the script); {instead}"
            ),
        });
    }
    out
}
