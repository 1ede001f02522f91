//! `python = "file.py:function"`: long-lived Python workers running an embedded shim that
//! imports the file and calls the function on every input (SPEC §5's protocol).

use std::path::Path;
use std::process::Command;

/// The worker program, passed to the interpreter with `-c`.
pub const SHIM: &str = include_str!("python_shim.py");

pub fn command(file: &Path, function: &str, python_exe: &str) -> Command {
    let mut cmd = Command::new(python_exe);
    // -u: unbuffered binary stdio (the shim manages its own buffering); -I is not used so
    // the user's environment (venv, PYTHONPATH) applies.
    cmd.arg("-u").arg("-c").arg(SHIM).arg(file).arg(function);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}
