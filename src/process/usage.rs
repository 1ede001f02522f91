//! What a process used: CPU time and peak memory, as the kernel accounts them.

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

/// runjobs' own peak resident size so far, KiB (getrusage(RUSAGE_SELF)): never less than
/// what a child it started was charged with at its exec.
#[allow(unsafe_code, reason = "getrusage has no safe wrapper in std or rustix")]
fn own_peak_rss_kib() -> u64 {
    // SAFETY: rusage is plain data, valid when zeroed, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX)
}
