//! What the machine has to spare, as the kernel reports it: available memory
//! (`/proc/meminfo`) and the load average (`/proc/loadavg`), read for the admission gates.
//!
//! `RUNJOBS_PROC_MEMINFO` and `RUNJOBS_PROC_LOADAVG` name other files to read instead (in
//! the same format): a test, or a user trying a gate out, can open and close it at will.

use std::io;
use std::path::PathBuf;

fn file(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// A `/proc/meminfo` field (`MemAvailable`, `MemTotal`) in bytes.
fn meminfo(field: &str) -> io::Result<u64> {
    let path = file("RUNJOBS_PROC_MEMINFO", "/proc/meminfo");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display())))?;
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            let kib = rest.trim().trim_end_matches("kB").trim();
            kib.parse::<u64>().ok().map(|k| k.saturating_mul(1024))
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}` has no `{field}` line", path.display()),
            )
        })
}

/// Memory available for new work without swapping (`MemAvailable`), in bytes.
pub fn mem_available() -> io::Result<u64> {
    meminfo("MemAvailable")
}

/// The machine's memory (`MemTotal`), in bytes.
pub fn mem_total() -> io::Result<u64> {
    meminfo("MemTotal")
}

/// The 1-minute load average: runnable (and uninterruptibly waiting) tasks, averaged.
pub fn load_1min() -> io::Result<f64> {
    let path = file("RUNJOBS_PROC_LOADAVG", "/proc/loadavg");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display())))?;
    text.split_whitespace()
        .next()
        .and_then(|first| first.parse::<f64>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}` does not start with a load average", path.display()),
            )
        })
}

/// The CPUs runjobs may use (its affinity mask and cgroup quota), at least 1.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Bytes as a person reads them: `512 MiB`, `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2 << 30), "2 GiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(300 << 20), "300 MiB");
    }
}
