//! SIGINT/SIGTERM handling: the first signal asks the run to stop (no new items, running ones
//! get SIGTERM and the grace period), the second one asks it to hurry (SIGKILL at once).
//!
//! Children run in their own process groups, so a terminal's Ctrl-C reaches only runjobs;
//! the pool stops them itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Debug, Default)]
pub struct Interrupt {
    count: AtomicUsize,
    last_signal: AtomicI32,
}

impl Interrupt {
    /// Installs the handlers (a signal-hook thread; no SIGCHLD handler is touched).
    pub fn install() -> std::io::Result<Arc<Interrupt>> {
        let interrupt = Arc::new(Interrupt::default());
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let shared = Arc::clone(&interrupt);
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
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
