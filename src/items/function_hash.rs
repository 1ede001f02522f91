//! A task's function identity for `--resume`: a hash of the function's definition (the other
//! half of an item's identity, its input, is `record::item_key`'s). Changing the function
//! reruns everything it ran.
//!
//! SHA-256 (truncated to 128 bits) over a canonical form, so it is stable across runs,
//! machines and runjobs versions that keep this encoding.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::job::{DEFAULT_MAX_OUTPUT, FunctionKind, StdinMode, StdoutMode, Task};

/// An argument naming a file bigger than this contributes its size and mtime, not its bytes.
const HASHED_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// A task's function definition, as 32 hex digits.
///
/// Covers what decides an item's output: the function kind and its definition (builtin name
/// and options; command argv and modes; worker argv; Python file, function and interpreter),
/// the contents of any argument that names a file in the task's folder (a script edited is a
/// function changed), the environment and the working folder. Timeouts, retries, workers and
/// limits do not change what a successful item returns, so they are left out.
/// Paths count relative to `job_dir`, so moving the project folder reruns nothing.
pub fn function_hash(task: &Task, job_dir: &Path) -> String {
    let mut h = Fields::default();
    match &task.function.kind {
        FunctionKind::Builtin { name, options } => {
            h.field("builtin").field(name);
            h.field(options.template.as_deref().unwrap_or("\u{0}none"));
        }
        FunctionKind::Command(spec) => {
            h.field("command").field(&spec.argv.len().to_string());
            for arg in &spec.argv {
                h.field(arg).file_named(&task.cwd, arg);
            }
            h.field(if spec.shell { "shell" } else { "exec" });
            h.field(match spec.stdin {
                StdinMode::Null => "stdin:null",
                StdinMode::Json => "stdin:json",
                StdinMode::Text => "stdin:text",
            });
            h.field(match spec.stdout {
                StdoutMode::Text => "stdout:text",
                StdoutMode::Json => "stdout:json",
                StdoutMode::Lines => "stdout:lines",
                StdoutMode::Ignore => "stdout:ignore",
            });
            // Only a raised cap changes the identity, so results computed before the key
            // existed are still recognised.
            if spec.max_output != DEFAULT_MAX_OUTPUT {
                h.field(&format!("max_output:{}", spec.max_output));
            }
        }
        // `batch` changes how items travel, not what they return.
        FunctionKind::Worker { argv, .. } => {
            h.field("worker").field(&argv.len().to_string());
            for arg in argv {
                h.field(arg).file_named(&task.cwd, arg);
            }
        }
        FunctionKind::Python {
            file,
            function,
            python_exe,
        } => {
            let file = file.strip_prefix(job_dir).unwrap_or(file).to_string_lossy();
            h.field("python").field(function).field(python_exe);
            h.field(&file).file_named(job_dir, &file);
        }
    }
    h.field("env").field(&task.env.len().to_string());
    for (key, value) in &task.env {
        h.field(key).field(value);
    }
    let cwd = task.cwd.strip_prefix(job_dir).unwrap_or(&task.cwd);
    h.field("cwd").field(&cwd.to_string_lossy());
    hex(&h.0.finalize()[..16])
}

/// Length-prefixed fields, so `["ab", "c"]` and `["a", "bc"]` hash differently.
#[derive(Default)]
struct Fields(Sha256);

impl Fields {
    fn field(&mut self, text: &str) -> &mut Fields {
        self.0.update((text.len() as u64).to_le_bytes());
        self.0.update(text.as_bytes());
        self
    }

    /// Adds the contents of `arg` when it names a regular file (relative to `dir`).
    fn file_named(&mut self, dir: &Path, arg: &str) -> &mut Fields {
        if arg.is_empty() || arg.contains('{') {
            return self;
        }
        let path = dir.join(arg);
        let Ok(meta) = std::fs::metadata(&path) else {
            return self;
        };
        if !meta.is_file() {
            return self;
        }
        if meta.len() > HASHED_FILE_LIMIT {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            return self.field(&format!("file:{}:{mtime}", meta.len()));
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                self.0.update(b"file");
                self.0.update((bytes.len() as u64).to_le_bytes());
                self.0.update(&bytes);
                self
            }
            Err(_) => self,
        }
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
