//! `runjobs`: parse the command line, run the command, exit with its code.

#[macro_use]
mod say;

mod builtins;
mod cli;
mod cron;
mod exec;
mod exit_code;
mod items;
mod job;
mod output;
mod process;
mod progress;
mod record;
mod report;
mod run;
mod worker;

/// Cases per property-test run: a short run in the test suite; `RUNJOBS_FUZZ_CASES=5000000
/// cargo test --release NAME` is the long one (a fuzzing session).
#[cfg(test)]
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("RUNJOBS_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; everything else is a bad command line.
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit_code::exit(exit_code::OK)
                }
                _ => exit_code::exit(exit_code::INVALID),
            };
        }
    };
    let code = match cli.command {
        None => run::run(&cli.run),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Validate { jobs }) => run::validate(&jobs),
        Some(Command::Schema) => print_stdout(job::schema_text()),
        Some(Command::Report {
            outputs,
            diff,
            json,
            html,
            junit,
        }) => {
            let extra = report::Extra {
                json,
                html: html.as_deref(),
                junit: junit.as_deref(),
            };
            report::report(&outputs, diff.as_deref(), &extra)
        }
        Some(Command::Crontab { jobs }) => cron::crontab(&jobs),
        Some(Command::Functions) => {
            run::list_functions();
            exit_code::OK
        }
        Some(Command::Worker {
            builtin,
            options,
            run_start_ns,
            journal,
        }) => return worker::run(&builtin, &options, run_start_ns, journal.as_deref()),
        Some(Command::Guard { parent }) => process::groups::guard_main(parent),
    };
    exit_code::exit(code)
}

/// Prints `text` exactly; a closed pipe (`runjobs schema | head`) is not an error.
fn print_stdout(text: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit_code::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_code::OK,
        Err(e) => {
            say!("error: {e}");
            exit_code::ITEMS_FAILED
        }
    }
}
