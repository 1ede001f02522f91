//! Cron: the `crontab` command's lines, and what a scheduled run leaves beside its results
//! (the history of results files, `keep`, and the run index).

mod crontab;
pub mod history;

pub use crontab::{crontab, files_in};
