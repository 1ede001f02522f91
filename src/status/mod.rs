//! `runjobs status`: what runs now and how far it is, else each job's last run, from the
//! files runs leave beside their lock (the lock, the live state, journals, the run index).
//! It only reads them: it never takes the lock or writes anything, so it never disturbs a
//! run and works for any user who can read the folder.

mod command;
mod gather;
mod show;
mod state;
mod targets;

pub use command::status;
pub use gather::running_output;
