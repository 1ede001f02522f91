//! Shell completions and the man page, generated from the clap definitions the parser uses,
//! so they never drift from the command line.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit_code;

/// Shell completions for `shell`, from the same definitions the parser uses.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = <Cli as CommandFactory>::command();
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "runjobs", &mut text);
    print_bytes(&text)
}

/// The man page, from the same definitions the parser uses.
pub fn man() -> u8 {
    let cmd = <Cli as CommandFactory>::command();
    let mut text = Vec::new();
    match clap_mangen::Man::new(cmd).render(&mut text) {
        Ok(()) => print_bytes(&text),
        Err(e) => {
            say!("error: cannot render the man page: {e}");
            exit_code::ITEMS_FAILED
        }
    }
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
pub fn print_bytes(bytes: &[u8]) -> u8 {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => exit_code::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_code::OK,
        Err(e) => {
            say!("error: {e}");
            exit_code::ITEMS_FAILED
        }
    }
}
