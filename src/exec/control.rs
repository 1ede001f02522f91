//! Run-wide conditions the pool obeys: the stop conditions (a signal, the job's `deadline`,
//! `max_failures` / `--fail-fast`) and the admission gates (`[admit]`, which hold new items
//! back while the machine is short of memory or busy). Decides nothing about single items.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::admit::Gate;
use crate::job::FailureLimit;
use crate::process::interrupt::Interrupt;

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT, SIGTERM or SIGHUP: running items are stopped, the rest skipped; exit 3.
    Interrupted,
    /// The job's `deadline` passed: running items are stopped, the rest skipped; exit 1.
    Deadline,
    /// More items failed than `max_failures` allows: running items finish, no new ones start.
    TooManyFailures,
    /// A one-liner's stdout was closed (`| head`): nobody reads the outputs any more, so no
    /// new item starts (running ones finish); not a failure.
    OutputClosed,
}

pub struct RunControl<'a> {
    interrupt: &'a Interrupt,
    deadline: Option<Duration>,
    deadline_passed: AtomicBool,
    limit: Option<FailureLimit>,
    failures: AtomicU64,
    /// Items of the tasks started so far (what a percentage limit counts against).
    items: AtomicU64,
    limit_exceeded: AtomicBool,
    output_closed: AtomicBool,
    gate: Option<Gate>,
}

impl<'a> RunControl<'a> {
    pub fn new(
        interrupt: &'a Interrupt,
        deadline: Option<Duration>,
        limit: Option<FailureLimit>,
    ) -> RunControl<'a> {
        RunControl {
            interrupt,
            deadline,
            deadline_passed: AtomicBool::new(false),
            limit,
            failures: AtomicU64::new(0),
            items: AtomicU64::new(0),
            limit_exceeded: AtomicBool::new(false),
            output_closed: AtomicBool::new(false),
            gate: None,
        }
    }

    /// With admission gates: no new item starts while `gate` is closed.
    pub fn with_gate(mut self, gate: Option<Gate>) -> RunControl<'a> {
        self.gate = gate;
        self
    }

    /// `None` while new items may start; else when to ask again (a gate is closed).
    pub fn admission_closed(&self) -> Option<std::time::Instant> {
        self.gate.as_ref()?.closed_until()
    }

    /// Whether admission gates are set.
    pub fn has_gate(&self) -> bool {
        self.gate.is_some()
    }

    /// Why no new item starts, while a gate holds them back.
    pub fn waiting(&self) -> Option<String> {
        self.gate.as_ref()?.waiting()
    }

    /// Why the run is stopping, if it is.
    pub fn stop(&self) -> Option<Stop> {
        if self.interrupt.requested() {
            Some(Stop::Interrupted)
        } else if self.deadline_passed.load(Ordering::Relaxed) {
            Some(Stop::Deadline)
        } else if self.limit_exceeded.load(Ordering::Relaxed) {
            Some(Stop::TooManyFailures)
        } else if self.output_closed.load(Ordering::Relaxed) {
            Some(Stop::OutputClosed)
        } else {
            None
        }
    }

    /// Running items must be stopped now (signal or deadline).
    pub fn must_stop_running(&self) -> bool {
        matches!(self.stop(), Some(Stop::Interrupted | Stop::Deadline))
    }

    /// The stdout a one-liner prints its outputs to was closed: the run stops.
    pub fn output_closed(&self) {
        self.output_closed.store(true, Ordering::SeqCst);
    }

    /// New items may start (and failed ones be retried).
    pub fn may_dispatch(&self) -> bool {
        self.stop().is_none()
    }

    /// Skip grace periods (a second signal).
    pub fn forced(&self) -> bool {
        self.interrupt.forced()
    }

    pub fn signal_name(&self) -> &'static str {
        self.interrupt.signal_name()
    }

    /// Counts a task's items toward a percentage limit.
    pub fn add_items(&self, count: u64) {
        self.items.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts an item that ended failed (after its retries).
    pub fn record_failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(limit) = self.limit
            && limit.exceeded(failures, self.items.load(Ordering::Relaxed))
        {
            self.limit_exceeded.store(true, Ordering::SeqCst);
        }
    }

    /// Notes the time; true once the deadline has passed.
    pub fn check_deadline(&self, elapsed: Duration) -> bool {
        if self.deadline.is_some_and(|d| elapsed >= d) {
            self.deadline_passed.store(true, Ordering::SeqCst);
        }
        self.deadline_passed.load(Ordering::Relaxed)
    }

    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// What an item that was running when the run stopped is told.
    pub fn stopped_message(&self) -> String {
        match self.stop() {
            Some(Stop::Deadline) => format!(
                "stopped: the run's deadline ({}) passed while this item ran",
                humantime::format_duration(self.deadline.unwrap_or_default())
            ),
            _ => "interrupted: the run was stopped while this item ran".to_owned(),
        }
    }

    /// What an item that never started is told.
    pub fn skipped_message(&self) -> String {
        match self.stop() {
            Some(Stop::Deadline) => "not started: the run's deadline passed".to_owned(),
            Some(Stop::TooManyFailures) => self.limit_message("not started: "),
            Some(Stop::OutputClosed) => "not started: standard output was closed".to_owned(),
            _ => "not started: the run was interrupted".to_owned(),
        }
    }

    /// `more than N items failed (max_failures = N)`, with `prefix`.
    pub fn limit_message(&self, prefix: &str) -> String {
        match self.limit {
            Some(FailureLimit::Count(0)) => format!("{prefix}an item failed (fail-fast)"),
            Some(FailureLimit::Count(n)) => {
                format!("{prefix}more than {n} items failed (max_failures = {n})")
            }
            Some(FailureLimit::Percent(p)) => {
                format!("{prefix}more than {p}% of the items failed (max_failures)")
            }
            None => format!("{prefix}too many items failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_exceeded_not_reached() {
        let interrupt = Interrupt::default();
        let control = RunControl::new(&interrupt, None, Some(FailureLimit::Count(2)));
        control.add_items(10);
        control.record_failure();
        control.record_failure();
        assert!(control.may_dispatch(), "two failures are allowed");
        control.record_failure();
        assert_eq!(control.stop(), Some(Stop::TooManyFailures));
        assert!(!control.must_stop_running(), "running items finish");
    }

    #[test]
    fn percent_counts_against_the_items_started() {
        let interrupt = Interrupt::default();
        let control = RunControl::new(&interrupt, None, Some(FailureLimit::Percent(10.0)));
        control.add_items(20);
        control.record_failure();
        control.record_failure();
        assert!(control.may_dispatch());
        control.record_failure();
        assert!(!control.may_dispatch());
    }

    #[test]
    fn a_closed_output_stops_dispatching_but_lets_running_items_finish() {
        let interrupt = Interrupt::default();
        let control = RunControl::new(&interrupt, None, None);
        control.output_closed();
        assert_eq!(control.stop(), Some(Stop::OutputClosed));
        assert!(!control.may_dispatch());
        assert!(!control.must_stop_running());
        assert!(
            control
                .skipped_message()
                .contains("standard output was closed")
        );
    }

    #[test]
    fn the_deadline_stops_running_items() {
        let interrupt = Interrupt::default();
        let control = RunControl::new(&interrupt, Some(Duration::from_secs(1)), None);
        assert!(!control.check_deadline(Duration::from_millis(999)));
        assert!(control.check_deadline(Duration::from_secs(1)));
        assert!(control.must_stop_running());
        assert!(control.stopped_message().contains("deadline (1s)"));
    }
}
