//! Integration tests: the real `runjobs` binary on real job files, with real processes.

mod util;

mod admit;
mod commands;
mod crashes;
mod cron;
mod hostile;
mod inputs;
mod junit;
mod layout;
mod oneliner;
mod outputs;
mod policy;
mod processes;
mod report;
mod resume;
mod returns;
mod reuse;
mod run;
mod slurm;
mod status;
mod tables;
mod unattended;
mod unwritable;
mod usage;
mod validate;
mod workers;
