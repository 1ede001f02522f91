//! The words after `runjobs exec [FLAGS]`: the command and its arguments, then GNU
//! parallel's input sources (`::: V...`, `:::: FILE...`). Only splits; what the words mean
//! is `template`'s and `inputs`'s.

use std::path::PathBuf;

/// Where one group of inputs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `::: V...`: these values.
    Values(Vec<String>),
    /// `:::: FILE`: one input a line of FILE.
    File(PathBuf),
    /// `:::: -`, or no source at all: standard input.
    Stdin,
}

/// A one-liner's command and its input groups (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub argv: Vec<String>,
    pub sources: Vec<Source>,
}

/// Splits `words` at the input markers.
pub fn split(words: &[String]) -> Result<Words, String> {
    let marker = |w: &String| matches!(w.as_str(), ":::" | "::::" | ":::+" | "::::+");
    let first = words.iter().position(marker).unwrap_or(words.len());
    let argv = words[..first].to_vec();
    if argv.is_empty() {
        return Err(
            "no command before the inputs; write `runjobs exec CMD [ARG...] ::: V...`".into(),
        );
    }
    let mut sources = Vec::new();
    let mut rest = &words[first..];
    while let Some((kind, tail)) = rest.split_first() {
        let end = tail.iter().position(marker).unwrap_or(tail.len());
        let (group, after) = tail.split_at(end);
        match kind.as_str() {
            ":::" => sources.push(Source::Values(group.to_vec())),
            "::::" if group.is_empty() => {
                return Err(
                    "`::::` needs a file (one input a line; `-` for standard input)".into(),
                );
            }
            "::::" => sources.extend(group.iter().map(|f| match f.as_str() {
                "-" => Source::Stdin,
                _ => Source::File(PathBuf::from(f)),
            })),
            linked => {
                return Err(format!(
                    "`{linked}` (inputs linked to the group before) is not supported; \
                     every group combines with every other"
                ));
            }
        }
        rest = after;
    }
    if sources.is_empty() {
        sources.push(Source::Stdin);
    }
    if sources.iter().filter(|s| **s == Source::Stdin).count() > 1 {
        return Err("standard input can be read only once (`:::: -` twice)".into());
    }
    Ok(Words { argv, sources })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn groups_follow_their_markers() {
        let got = split(&words("wc -c {} ::: a b ::: 1 :::: f.txt -")).unwrap();
        assert_eq!(got.argv, ["wc", "-c", "{}"]);
        assert_eq!(
            got.sources,
            [
                Source::Values(vec!["a".into(), "b".into()]),
                Source::Values(vec!["1".into()]),
                Source::File("f.txt".into()),
                Source::Stdin,
            ]
        );
    }

    #[test]
    fn no_source_reads_standard_input_and_an_empty_group_stays_empty() {
        assert_eq!(split(&words("echo")).unwrap().sources, [Source::Stdin]);
        assert_eq!(
            split(&words("echo :::")).unwrap().sources,
            [Source::Values(vec![])]
        );
    }

    #[test]
    fn bad_lines_are_refused() {
        for (line, says) in [
            ("::: a", "no command"),
            ("echo ::::", "needs a file"),
            ("echo ::: a :::+ b", "not supported"),
            ("echo :::: - -", "only once"),
        ] {
            let err = split(&words(line)).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}
