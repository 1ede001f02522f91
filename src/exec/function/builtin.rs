//! Builtins run in runjobs' own worker processes: the runjobs executable in its hidden
//! `__worker` mode.

use std::process::Command;

use crate::builtins::Options;

pub fn command(name: &str, options: &Options) -> Result<Command, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the runjobs executable: {e}"))?;
    let mut cmd = Command::new(exe);
    let options = serde_json::json!({ "template": options.template });
    cmd.args([
        "__worker",
        "--builtin",
        name,
        "--options",
        &options.to_string(),
    ]);
    Ok(cmd)
}
