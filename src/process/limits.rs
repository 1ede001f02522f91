//! Resource limits for a function's processes, applied with setrlimit.

/// Resource limits applied with setrlimit in each of the function's processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Address-space limit in bytes (`"512MiB"`).
    pub memory: Option<u64>,
    /// CPU time in whole seconds (`"60s"`); the kernel sends SIGXCPU, then SIGKILL.
    pub cpu: Option<u64>,
    pub open_files: Option<u64>,
}
