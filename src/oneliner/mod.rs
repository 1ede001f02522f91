//! `runjobs exec`: GNU parallel's one-liner form. It builds a job file (as text, the one
//! `--save` writes) from the command line, loads it through the normal loader and runs it on
//! the normal pipeline; its own part is the relay that prints each item's stdout in input
//! order. Stages: `words` splits the command line, `template` turns parallel's replacement
//! strings into command templates, `inputs` the input groups into `inputs`, `job_text` writes
//! the file, `relay` (over `spill`) prints, `run` puts them together.

mod inputs;
mod job_text;
mod relay;
mod run;
mod spill;
mod template;
mod words;

pub use run::exec;
