//! What makes two items "the same work", for `--resume`: a hash of the function's definition
//! and a hash of (that, the input). Positions play no part, so inserting, reordering or
//! appending inputs never mislabels finished work, and changing the function reruns it all.
//!
//! Both hashes are SHA-256 (truncated to 128 bits) over a canonical form, so they are stable
//! across runs, machines and runjobs versions that keep this encoding.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::job::{FunctionKind, StdinMode, StdoutMode, Task};

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
        }
        FunctionKind::Worker { argv } => {
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

/// The identity of one item: its function's hash and its input in canonical JSON (object
/// keys sorted, so `{a, b}` and `{b, a}` are one input).
pub fn item_key(function_hash: &str, input: &Value) -> ItemKey {
    let mut text = String::with_capacity(64);
    write_canonical(&mut text, input);
    let mut h = Sha256::new();
    h.update(function_hash.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    ItemKey(u128::from_be_bytes(key))
}

/// See [`item_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemKey(u128);

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

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Compact JSON with object keys sorted (the run preserves key order, identity must not).
fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(out, value);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_but_values_and_functions_do() {
        let f = "0123";
        assert_eq!(
            item_key(f, &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]})),
            item_key(f, &json!({"b": [1, {"x": 1, "y": 2}], "a": 1}))
        );
        assert_ne!(item_key(f, &json!(1)), item_key(f, &json!(2)));
        assert_ne!(item_key(f, &json!(1)), item_key(f, &json!("1")));
        assert_ne!(item_key(f, &json!(1)), item_key("0124", &json!(1)));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let mut text = String::new();
        write_canonical(
            &mut text,
            &json!({"b": {"d": 1, "c": "x\"y"}, "a": [null, true]}),
        );
        assert_eq!(text, r#"{"a":[null,true],"b":{"c":"x\"y","d":1}}"#);
    }
}
