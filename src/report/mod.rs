//! `runjobs report`: reading results back for a reviewer. One results file gives its summary
//! (counts, times, utilisation, slowest items, failures); several, or a folder, give the
//! history of the runs; `--diff OLD NEW` what changed from one run to the next. Every format
//! runjobs writes is read, and a journal of a killed run, through `record::read`.

mod command;
mod compare;
mod csv_rows;
mod draw;
mod html;
mod item;
mod junit;
mod show;
mod summary;
mod timeline;

pub use command::run;
