//! SIGINT/SIGTERM handling: the first signal asks the run to stop (no new items, running ones
//! get SIGTERM and the grace period), the second one asks it to hurry (SIGKILL at once).
//!
//! Children run in their own process groups, so a terminal's Ctrl-C reaches only runjobs;
//! the pool stops them itself. Ctrl-Z (SIGTSTP) likewise reaches only runjobs: it stops every
//! child group, then itself; on `fg` (SIGCONT) it continues them, and timeouts do not count
//! the pause (see `pause`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::thread;

use rustix::process::{Signal, getpid, kill_process};
use signal_hook::consts::{SIGCONT, SIGINT, SIGTERM, SIGTSTP};
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
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGTSTP, SIGCONT])?;
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

    /// A first SIGINT/SIGTERM arrived: stop dispatching and stop running items.
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
            _ => "SIGINT",
        }
    }
}
