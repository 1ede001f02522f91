//! Integration tests: the real `runjobs` binary on real job files, with real processes.

mod util;

mod commands;
mod inputs;
mod outputs;
mod policy;
mod processes;
mod run;
mod validate;
mod workers;
