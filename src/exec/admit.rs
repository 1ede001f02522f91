//! Admission gates (GNU parallel's `--memfree` and `--load`): no new item starts while the
//! machine's available memory is below `memfree`, or its 1-minute load average per CPU is
//! above `load`. Items already running go on. Decides nothing else: slots ask before they
//! take items, and the display asks why they wait.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::job::Admit;
use crate::process::machine;

/// While a gate is closed, how often the slots look again. While it is open they look
/// before every item they take (a read of `/proc/meminfo` costs about 10 µs, a small share
/// of even a short command), so a gate that closes holds the very next item back.
pub const RECHECK: Duration = Duration::from_millis(100);

/// The job's gates and what the last look found.
pub struct Gate {
    admit: Admit,
    cpus: usize,
    last: Mutex<Look>,
}

#[derive(Default)]
struct Look {
    /// Why the gate is closed; `None` while it is open.
    closed: Option<String>,
}

impl Gate {
    /// The gate of `admit`; `None` when it sets no bound.
    pub fn new(admit: Admit) -> Option<Gate> {
        (admit.memfree.is_some() || admit.load.is_some()).then(|| Gate {
            admit,
            cpus: machine::cpus(),
            last: Mutex::new(Look::default()),
        })
    }

    /// `None` while new items may start; else when to ask again.
    pub fn closed_until(&self) -> Option<Instant> {
        let closed = self.why_closed();
        let until = closed.as_ref().map(|_| Instant::now() + RECHECK);
        self.last.lock().unwrap_or_else(|p| p.into_inner()).closed = closed;
        until
    }

    /// Why no item starts, when the last look found the gate closed.
    pub fn waiting(&self) -> Option<String> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.closed.clone()
    }

    /// Looks at the machine. A figure that cannot be read leaves its gate open: a run must
    /// not wait forever on a file it cannot read.
    fn why_closed(&self) -> Option<String> {
        if let Some(memfree) = self.admit.memfree
            && let Ok(available) = machine::mem_available()
            && available < memfree
        {
            return Some(format!(
                "available memory {} is below memfree = {}",
                machine::human_bytes(available),
                machine::human_bytes(memfree)
            ));
        }
        if let Some(bound) = self.admit.load
            && let Ok(load) = machine::load_1min()
        {
            let per_cpu = load / self.cpus as f64;
            if per_cpu > bound {
                return Some(format!(
                    "the load is {per_cpu:.2} per CPU ({load:.2} over {} CPU{}), above load = {bound}",
                    self.cpus,
                    if self.cpus == 1 { "" } else { "s" }
                ));
            }
        }
        None
    }
}
