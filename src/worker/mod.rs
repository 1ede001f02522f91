//! The worker side: the hidden `__worker` mode that runs builtins in a child process, and the
//! line protocols between runjobs and its workers. Knows no job files.

pub mod protocol;
mod serve;

pub use serve::run;
