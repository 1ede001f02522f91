//! GNU parallel's replacement strings → job-file command templates: `{}` → `{input}`, `{.}`
//! → `{input.noext}`, `{/}` → `{input.name}`, `{//}` → `{input.dir}`, `{/.}` →
//! `{input.stem}`, `{#}` → `{number}`, `{N}` → `{input.N}` (a group's value). Every other
//! brace is literal (`awk '{print $1}'`) and is escaped. With no replacement string, the
//! input is appended as the last argument(s), as parallel does.

/// The job file's `command` for `argv` over `groups` input groups.
pub fn command(argv: &[String], groups: usize, shell: bool) -> Result<Vec<String>, String> {
    if shell {
        return shell_command(argv, groups);
    }
    let mut any = false;
    let mut out = Vec::with_capacity(argv.len() + groups);
    for arg in argv {
        let (text, placeholders) = convert(arg, groups)?;
        any |= placeholders;
        out.push(text);
    }
    if !any {
        match groups {
            1 => out.push("{input}".to_owned()),
            n => out.extend((1..=n).map(|g| format!("{{input.{g}}}"))),
        }
    }
    Ok(out)
}

/// `--shell`: the script is used verbatim (the input is its `$1`); arguments after it are
/// templates, arriving as `$2`, `$3`, ….
fn shell_command(argv: &[String], groups: usize) -> Result<Vec<String>, String> {
    if groups > 1 {
        return Err(
            "`--shell` takes one input group (the input is the script's $1); without \
                    `--shell`, `{1}` and `{2}` name the groups' values"
                .into(),
        );
    }
    let script = &argv[0];
    if let Some(found) = tokens(script).find(|t| t.known().is_some()) {
        return Err(format!(
            "`{}` in a `--shell` script: the input is \"$1\" there (never spliced into the \
             script); write \"$1\" instead",
            found.text
        ));
    }
    let mut out = vec![script.clone()];
    for arg in &argv[1..] {
        out.push(convert(arg, groups)?.0);
    }
    Ok(out)
}

/// One argument as a job-file template, and whether it held a replacement string.
fn convert(arg: &str, groups: usize) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(arg.len() + 8);
    let mut any = false;
    let mut at = 0;
    for token in tokens(arg) {
        out.push_str(&escape(&arg[at..token.start]));
        at = token.start + token.text.len();
        let Some(known) = token.known() else {
            return Err(unsupported(token.text));
        };
        out.push_str(&known.template(groups, token.text)?);
        any = true;
    }
    out.push_str(&escape(&arg[at..]));
    Ok((out, any))
}

fn escape(literal: &str) -> String {
    literal.replace('{', "{{").replace('}', "}}")
}

fn unsupported(text: &str) -> String {
    format!(
        "GNU parallel's `{text}` is not supported by `runjobs exec`; supported: {{}}, {{.}}, \
         {{/}}, {{//}}, {{/.}}, {{#}} and {{1}}, {{2}}, … (a literal brace needs no escape)"
    )
}

/// A replacement string runjobs knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Input,
    NoExt,
    Name,
    Dir,
    Stem,
    Number,
    Group(usize),
}

impl Known {
    fn template(self, groups: usize, text: &str) -> Result<String, String> {
        let path_of_one = |field: &str| {
            if groups == 1 {
                Ok(format!("{{input.{field}}}"))
            } else {
                Err(format!(
                    "`{text}` with {groups} input groups is not supported; name a group's \
                     value with {{1}}, {{2}}, …"
                ))
            }
        };
        match self {
            Known::Input if groups == 1 => Ok("{input}".into()),
            // parallel's `{}` with several groups: their values, joined by a space.
            Known::Input => Ok((1..=groups)
                .map(|g| format!("{{input.{g}}}"))
                .collect::<Vec<_>>()
                .join(" ")),
            Known::Number => Ok("{number}".into()),
            Known::NoExt => path_of_one("noext"),
            Known::Name => path_of_one("name"),
            Known::Dir => path_of_one("dir"),
            Known::Stem => path_of_one("stem"),
            Known::Group(g) if g == 0 || g > groups => Err(format!(
                "`{text}`: there {} {groups} input group{} (`:::` or `::::`)",
                if groups == 1 { "is" } else { "are" },
                if groups == 1 { "" } else { "s" }
            )),
            Known::Group(_) if groups == 1 => Ok("{input}".into()),
            Known::Group(g) => Ok(format!("{{input.{g}}}")),
        }
    }
}

/// A replacement string found in an argument: known, or parallel's but unsupported.
struct Token<'a> {
    start: usize,
    text: &'a str,
}

impl Token<'_> {
    fn known(&self) -> Option<Known> {
        let inner = &self.text[1..self.text.len() - 1];
        Some(match inner {
            "" => Known::Input,
            "." => Known::NoExt,
            "/" => Known::Name,
            "//" => Known::Dir,
            "/." => Known::Stem,
            "#" => Known::Number,
            digits => Known::Group(digits.parse().ok()?),
        })
    }
}

/// The replacement strings of `arg`, parallel's whole set: the ones runjobs knows, and
/// `{%}`, `{##}`, `{+/}`, `{..}`, `{N.}`, `{N/}`, `{=perl=}`… (which it refuses). Any other
/// `{...}` is literal text, as it is for parallel.
fn tokens(arg: &str) -> impl Iterator<Item = Token<'_>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(off) = arg[from..].find('{') {
            let start = from + off;
            let rest = &arg[start..];
            let len = if rest.starts_with("{=") {
                rest.find("=}").map(|e| e + 2)
            } else {
                rest.find('}')
                    .map(|e| e + 1)
                    .filter(|&e| is_replacement(&rest[1..e - 1]))
            };
            match len {
                Some(len) => {
                    from = start + len;
                    return Some(Token {
                        start,
                        text: &arg[start..start + len],
                    });
                }
                None => from = start + 1,
            }
        }
        None
    })
}

/// Whether `{inner}` is one of parallel's replacement strings.
fn is_replacement(inner: &str) -> bool {
    let ops = [
        "", ".", "/", "//", "/.", "#", "%", "##", "..", "...", "/..", "/...", "+/", "+.", "+..",
        "+...",
    ];
    let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
    let (number, op) = inner.split_at(digits);
    if number.is_empty() {
        ops.contains(&op)
    } else {
        ops.contains(&op) && !matches!(op, "#" | "%" | "##")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str], groups: usize) -> Result<Vec<String>, String> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        command(&argv, groups, false)
    }

    #[test]
    fn replacement_strings_become_templates() {
        assert_eq!(
            cmd(
                &["echo", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}", "{1}"],
                1
            )
            .unwrap(),
            [
                "echo",
                "{input}",
                "{input.noext}",
                "{input.name}",
                "{input.dir}",
                "{input.stem}",
                "{number}",
                "{input}"
            ]
        );
        assert_eq!(
            cmd(&["cp", "{}", "out/{/.}.bak"], 1).unwrap(),
            ["cp", "{input}", "out/{input.stem}.bak"]
        );
    }

    #[test]
    fn other_braces_are_literal() {
        assert_eq!(
            cmd(&["awk", "{print $1}", "{}"], 1).unwrap(),
            ["awk", "{{print $1}}", "{input}"]
        );
        assert_eq!(
            cmd(&["echo", "{{}}", "{x}"], 1).unwrap(),
            ["echo", "{{{input}}}", "{{x}}"]
        );
        assert_eq!(
            cmd(&["echo", "}{"], 1).unwrap(),
            ["echo", "}}{{", "{input}"]
        );
    }

    #[test]
    fn without_a_replacement_string_the_input_is_appended() {
        assert_eq!(cmd(&["wc", "-c"], 1).unwrap(), ["wc", "-c", "{input}"]);
        assert_eq!(
            cmd(&["echo"], 3).unwrap(),
            ["echo", "{input.1}", "{input.2}", "{input.3}"]
        );
        assert_eq!(cmd(&["echo", "{#}"], 1).unwrap(), ["echo", "{number}"]);
    }

    #[test]
    fn groups_are_named_by_number_and_joined_by_all() {
        assert_eq!(
            cmd(&["echo", "{2}-{1}", "{}"], 2).unwrap(),
            ["echo", "{input.2}-{input.1}", "{input.1} {input.2}"]
        );
        assert!(
            cmd(&["echo", "{3}"], 2)
                .unwrap_err()
                .contains("2 input groups")
        );
        assert!(cmd(&["echo", "{.}"], 2).unwrap_err().contains("{1}, {2}"));
    }

    #[test]
    fn unsupported_replacement_strings_are_refused() {
        for s in ["{%}", "{1.}", "{=s/a/b/=}", "{+/}", "x{##}"] {
            assert!(
                cmd(&["echo", s], 1).unwrap_err().contains("not supported"),
                "{s}"
            );
        }
    }

    #[test]
    fn shell_scripts_are_verbatim_and_take_the_input_as_dollar_one() {
        let argv = vec![
            "echo \"$1\" | awk '{print $1}'".to_owned(),
            "{/}".to_owned(),
        ];
        assert_eq!(
            command(&argv, 1, true).unwrap(),
            [argv[0].as_str(), "{input.name}"]
        );
        let err = command(&["echo {}".to_owned()], 1, true).unwrap_err();
        assert!(err.contains("\"$1\""), "{err}");
        assert!(command(&["true".to_owned()], 2, true).is_err());
    }
}
