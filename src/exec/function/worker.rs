//! `worker = [...]`: a long-lived external program speaking SPEC §5's JSON lines.

use std::process::Command;

pub fn command(argv: &[String]) -> Result<Command, String> {
    let (program, args) = argv.split_first().ok_or("the worker command is empty")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    Ok(cmd)
}
