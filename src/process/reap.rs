//! Reaping a long-lived child with the CPU time it used in all. A process's CPU clock can be
//! read until it is reaped (a zombie keeps its times), so the waits here wait for the exit
//! *without* reaping (a pidfd, else `waitid` with `WNOWAIT`), read the clock, and only then
//! reap through std, which keeps `Child` knowing its child is gone (no signal can reach a
//! reused pid). A figure for a worker's whole life, start-up and idle time included; the
//! processes it started are not in it.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, pidfd_open, waitid};

use super::usage::process_cpu_seconds;

/// How a child ended, and the CPU time it used (`None` when it could not be read: it had
/// been reaped already).
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub status: ExitStatus,
    pub cpu_s: Option<f64>,
}

/// Without a pidfd, how often `exited_within` looks.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// Waits up to `limit` for `child` to exit, leaving it unreaped; true when it has exited (or
/// is no longer there to wait for).
pub fn exited_within(child: &Child, limit: Duration) -> bool {
    let pid = Pid::from_child(child);
    let Ok(pidfd) = pidfd_open(pid, PidfdFlags::empty()) else {
        return exited_by_polling(pid, limit);
    };
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::INTR) => {}
            Err(_) => return exited_by_polling(pid, left),
        }
    }
}

/// `exited_within` where pidfds are not to be had (a kernel before 5.3).
fn exited_by_polling(pid: Pid, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if has_exited(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Whether `pid` has exited (or cannot be waited for), leaving it unreaped.
fn has_exited(pid: Pid) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    matches!(waitid(WaitId::Pid(pid), options), Ok(Some(_)) | Err(_))
}

/// Reaps `child`, which has exited or is about to (it was sent SIGKILL), with its CPU time.
pub fn reap(child: &mut Child) -> Reaped {
    let pid = Pid::from_child(child);
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    let cpu_s = loop {
        match waitid(WaitId::Pid(pid), options) {
            Ok(_) => break process_cpu_seconds(child.id()),
            Err(Errno::INTR) => {}
            // Reaped already: its times went with it.
            Err(_) => break None,
        }
    };
    // wait() only fails if the child was already reaped; report the SIGKILL that was sent
    // (a raw wait status of 9 reads "killed by signal 9").
    let status = child.wait().unwrap_or_else(|_| ExitStatus::from_raw(9));
    Reaped { status, cpu_s }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// A child that spins for about 0.2 s of CPU, then exits 3.
    fn spinner() -> Child {
        Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 3",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_reaped_child_reports_its_status_and_the_cpu_it_used() {
        let mut child = spinner();
        assert!(exited_within(&child, Duration::from_secs(30)));
        let reaped = reap(&mut child);
        assert_eq!(reaped.status.code(), Some(3));
        let cpu = reaped.cpu_s.expect("the zombie's clock is readable");
        assert!(cpu > 0.01 && cpu < 30.0, "{cpu}");
        // Reaped: waiting again is harmless and says so.
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn a_running_child_has_not_exited_within_a_short_wait() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!exited_within(&child, Duration::from_millis(50)));
        child.kill().unwrap();
        let reaped = reap(&mut child);
        assert_eq!(reaped.status.signal(), Some(9));
    }

    #[test]
    fn polling_without_a_pidfd_sees_the_exit_too() {
        let mut child = Command::new("true").spawn().unwrap();
        assert!(exited_by_polling(
            Pid::from_child(&child),
            Duration::from_secs(30)
        ));
        assert_eq!(reap(&mut child).status.code(), Some(0));
    }
}
