//! A job file's outline: its name, where its results go and its tasks' names, read without
//! validating the rest. `runjobs status` needs no more, and must work for a user who could
//! not run the job (an output folder they cannot write, input files they cannot read).

use std::path::{Path, PathBuf};

use super::model::JobFile;
use super::resolve::DEFAULT_OUTPUT;
use super::resolved::normalize;

#[derive(Debug, Clone)]
pub struct Outline {
    /// `name`, else the file's stem.
    pub name: String,
    /// The job file as named.
    pub file: PathBuf,
    /// The job file's folder, absolute.
    pub dir: PathBuf,
    /// `[output] path`, absolute, placeholders unfilled.
    pub path_template: PathBuf,
    /// The tasks' names (`name`, else the function's), in order.
    pub tasks: Vec<String>,
}

/// Reads the outline of the job file at `path`; the error says why it is not a job file.
pub fn outline(path: &Path) -> Result<Outline, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let file: JobFile = toml::from_str(&text).map_err(|e| format!("not a job file: {e}"))?;
    if file.tasks.is_empty() {
        return Err("not a job file: it has no `[[task]]`".into());
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(folder)
        .map_err(|e| format!("cannot resolve its folder `{}`: {e}", folder.display()))?;
    let name = file.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into())
    });
    let template = file
        .output
        .as_ref()
        .and_then(|o| o.path.as_deref())
        .unwrap_or(DEFAULT_OUTPUT);
    Ok(Outline {
        name,
        file: path.to_owned(),
        path_template: normalize(&dir.join(template)),
        dir,
        tasks: file
            .tasks
            .iter()
            .map(|t| t.name.clone().unwrap_or_else(|| t.function.clone()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outline_needs_no_valid_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightly.toml");
        // The glob's folder does not exist: `load` would refuse the file, the outline not.
        std::fs::write(
            &path,
            "[output]\npath = \"res/{job}-{timestamp}.json\"\n\
             [[task]]\nfunction = \"sha256_file\"\ninputs = { glob = \"nowhere/*.txt\" }\n\
             [[task]]\nname = \"second\"\nfunction = \"square\"\ninputs = [1]\n",
        )
        .unwrap();
        let outline = outline(&path).unwrap();
        assert_eq!(outline.name, "nightly");
        assert_eq!(outline.tasks, ["sha256_file", "second"]);
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            outline.path_template,
            dir.join("res/{job}-{timestamp}.json")
        );
        std::fs::write(&path, "job = \"x\"\nstarted_at = \"2026\"\n[[tasks]]\n").unwrap();
        assert!(
            super::outline(&path).is_err(),
            "a results file is no job file"
        );
    }
}
