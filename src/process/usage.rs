//! What a process used: CPU time and peak memory, as the kernel accounts them.

use std::sync::OnceLock;

/// Resources one process used, from `wait4`'s rusage when it was reaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU time, seconds: the process and the descendants it waited for.
    pub cpu_s: f64,
    /// Peak resident set size, KiB: the largest of the process and the descendants it
    /// waited for (a maximum over single processes, never a sum). `None` when it was not
    /// above runjobs' own peak: see `of`.
    pub max_rss_kib: Option<u64>,
}

impl Usage {
    /// The usage `wait4` reported for a child of this process.
    ///
    /// Linux charges a process, when it execs, with the peak resident size of the memory it
    /// had until then. A child started by posix_spawn shares runjobs' memory until its exec
    /// (a fork copies part of it), so its `ru_maxrss` is at least (about) runjobs' own
    /// resident size then, whatever the program used. Only a figure above runjobs' own peak
    /// so far is certainly the program's: a smaller one is kept back rather than written as
    /// if it were measured.
    pub(super) fn of(usage: &libc::rusage) -> Usage {
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // Linux counts ru_maxrss in KiB.
        let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0);
        Usage {
            cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            max_rss_kib: (peak > own_peak_rss_kib()).then_some(peak),
        }
    }
}

/// runjobs' own peak resident size so far, KiB: never less than what a child it started
/// was charged with at its exec.
///
/// getrusage(RUSAGE_SELF) gives it cheaply, but it also counts what runjobs itself was
/// charged with at its own exec: its parent's size, when runjobs was spawned from a large
/// process (a test harness, a Python script). Only then, and only while runjobs' own peak
/// is below that, is the exact figure (`VmHWM`) read from `/proc/self/status`.
fn own_peak_rss_kib() -> u64 {
    static INHERITED: OnceLock<Option<u64>> = OnceLock::new();
    let peak = self_maxrss_kib();
    let inherited =
        *INHERITED.get_or_init(|| vm_hwm_kib().and_then(|hwm| (peak > hwm).then_some(peak)));
    match inherited {
        Some(inherited) if peak <= inherited => vm_hwm_kib().unwrap_or(peak),
        _ => peak,
    }
}

/// getrusage(RUSAGE_SELF).ru_maxrss, KiB.
#[allow(unsafe_code, reason = "getrusage has no safe wrapper in std or rustix")]
fn self_maxrss_kib() -> u64 {
    // SAFETY: rusage is plain data, valid when zeroed, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX)
}

/// The peak resident size of runjobs' own memory (`VmHWM`), KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user plus system, all its threads) process `pid` has used so far, in seconds,
/// read from its CPU-time clock (clock_getcpuclockid): what getrusage would say inside it.
/// `None` once it is gone.
#[allow(
    unsafe_code,
    reason = "clock_getcpuclockid has no safe wrapper in std or rustix"
)]
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: both calls only write the out-parameters, which are live locals of the right
    // types; timespec is plain data, valid when zeroed.
    unsafe {
        if libc::clock_getcpuclockid(pid, &mut clock) != 0 {
            return None;
        }
        let mut t: libc::timespec = std::mem::zeroed();
        if libc::clock_gettime(clock, &mut t) != 0 {
            return None;
        }
        Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9)
    }
}

/// CPU time the calling thread has used so far, in nanoseconds.
pub fn thread_cpu_nanos() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}
