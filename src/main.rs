//! `runjobs`: parse the command line, run the command, exit with its code.

#[macro_use]
mod say;

#[cfg(test)]
mod testing;

mod builtins;
mod cli;
mod cron;
mod exec;
mod exit_code;
mod help;
mod items;
mod job;
mod oneliner;
mod output;
mod process;
mod progress;
mod record;
mod report;
mod run;
mod status;
mod visible;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Internal, InternalCommand};

fn main() -> ExitCode {
    if Internal::requested() {
        return internal();
    }
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
        Some(Command::Schema) => help::print_bytes(job::schema_text().as_bytes()),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Crontab { jobs }) => cron::crontab(&jobs),
        Some(Command::Status { paths, json }) => status::status(&paths, json),
        Some(Command::Exec(args)) => oneliner::exec(&args),
        Some(Command::Completions { shell }) => help::completions(shell),
        Some(Command::Man) => help::man(),
        Some(Command::Functions) => run::list_functions(),
    };
    exit_code::exit(code)
}

/// A hidden mode: a builtin worker, or the guard of a runjobs' process groups.
fn internal() -> ExitCode {
    let internal = match Internal::try_parse() {
        Ok(internal) => internal,
        Err(e) => {
            let _ = e.print();
            return exit_code::exit(exit_code::INVALID);
        }
    };
    match internal.command {
        InternalCommand::Worker {
            builtin,
            options,
            run_start_ns,
            journal,
        } => worker::run(&builtin, &options, run_start_ns, journal.as_deref()),
        InternalCommand::Shard { spool, shard } => {
            exit_code::exit(exec::slurm::shard_main(&spool, shard))
        }
        InternalCommand::Guard { parent } => exit_code::exit(process::groups::guard_main(parent)),
    }
}
