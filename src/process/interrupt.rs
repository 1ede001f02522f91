//! SIGINT/SIGTERM/SIGHUP handling: the first signal asks the run to stop (no new items,
//! running ones get SIGTERM and the grace period), the second one asks it to hurry (SIGKILL
//! at once). SIGHUP (a closed terminal or ssh session) is a stop like SIGTERM, so the partial
//! results are written; but a SIGHUP ignored when runjobs started (`nohup`) stays ignored, and
//! the run goes on.
//!
//! Children run in their own process groups, so a terminal's Ctrl-C reaches only runjobs;
//! the pool stops them itself. Ctrl-Z (SIGTSTP) likewise reaches only runjobs: it stops every
//! child group, then itself; on `fg` (SIGCONT) it continues them, and timeouts do not count
//! the pause (see `pause`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::thread;

use rustix::process::{Signal, getpid, kill_process};
use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP};
use signal_hook::iterator::Signals;

use super::{groups, pause};

#[derive(Debug, Default)]
pub struct Interrupt {
    count: AtomicUsize,
    last_signal: AtomicI32,
}

/// SIGTSTP: stops the children, then runjobs itself (as SIGTSTP's default would have).
fn pause() {
    pause::begin();
    groups::signal_all(Signal::STOP);
    // The process stops soon after, not necessarily before this call returns (another
    // thread may take the signal), so the children are continued on SIGCONT, not here.
    let _ = kill_process(getpid(), Signal::STOP);
}

/// SIGCONT after a pause: continues the children. The pause ends first: a child started
/// meanwhile then either saw the pause and stopped itself before `signal_all` (which
/// continues it), or did not see it (see `GroupChild::new`).
fn resume() {
    pause::end();
    groups::signal_all(Signal::CONT);
}

impl Interrupt {
    /// Installs the handlers (a signal-hook thread; no SIGCHLD handler is touched).
    pub fn install() -> std::io::Result<Arc<Interrupt>> {
        let interrupt = Arc::new(Interrupt::default());
        let mut handled = vec![SIGINT, SIGTERM, SIGTSTP, SIGCONT];
        if !hangup_ignored() {
            handled.push(SIGHUP);
        }
        let mut signals = Signals::new(handled)?;
        let shared = Arc::clone(&interrupt);
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut paused = false;
                for signal in signals.forever() {
                    match signal {
                        SIGTSTP => {
                            paused = true;
                            pause();
                            continue;
                        }
                        SIGCONT if paused => {
                            paused = false;
                            resume();
                            continue;
                        }
                        SIGCONT => continue,
                        _ => {}
                    }
                    shared.last_signal.store(signal, Ordering::SeqCst);
                    shared.count.fetch_add(1, Ordering::SeqCst);
                }
            })?;
        Ok(interrupt)
    }

    /// A first SIGINT/SIGTERM/SIGHUP arrived: stop dispatching and stop running items.
    pub fn requested(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// A second one arrived: skip grace periods.
    pub fn forced(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 1
    }

    pub fn signal_name(&self) -> &'static str {
        match self.last_signal.load(Ordering::Relaxed) {
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "SIGINT",
        }
    }
}

/// Whether SIGHUP was ignored when runjobs started (`nohup`, or a parent that ignores it):
/// the `SigIgn` mask of `/proc/self/status`, whose lowest bit is signal 1. Installing a
/// handler would undo what the user asked for, so an ignored SIGHUP is left alone. When the
/// mask cannot be read, SIGHUP is handled.
fn hangup_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    ignores_hangup(&status)
}

fn ignores_hangup(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (SIGHUP - 1)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ignored_hangup_is_read_from_the_sigign_mask() {
        assert!(ignores_hangup(
            "Name:\trunjobs\nSigIgn:\t0000000000000001\n"
        ));
        assert!(ignores_hangup("SigIgn:\t0000000000001001\n"));
        assert!(!ignores_hangup("SigIgn:\t0000000000001000\n"));
        assert!(!ignores_hangup("SigIgn:\tnonsense\n"));
        assert!(!ignores_hangup(""));
    }
}
