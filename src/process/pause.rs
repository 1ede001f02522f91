//! Ctrl-Z (SIGTSTP) pauses a run and `fg` (SIGCONT) resumes it; time spent paused does not
//! count against item timeouts or the run's deadline.
//!
//! Timeouts compare instants, so rather than stop every clock, the few pauses a run ever has
//! are logged and deadlines are moved later by the pause time that fell after their start.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Log {
    /// Finished pauses.
    spans: Vec<(Instant, Instant)>,
    /// The pause going on now.
    since: Option<Instant>,
}

static LOG: Mutex<Log> = Mutex::new(Log {
    spans: Vec::new(),
    since: None,
});
/// Whether any pause ever began: spares the lock on every timeout check of a normal run.
static EVER: AtomicBool = AtomicBool::new(false);

fn log() -> std::sync::MutexGuard<'static, Log> {
    LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn begin() {
    EVER.store(true, Ordering::SeqCst);
    log().since.get_or_insert_with(Instant::now);
}

pub fn end() {
    let mut log = log();
    if let Some(since) = log.since.take() {
        log.spans.push((since, Instant::now()));
    }
}

/// Whether a pause is going on.
pub fn is_paused() -> bool {
    EVER.load(Ordering::Relaxed) && log().since.is_some()
}

/// Time spent paused after `start` (a pause going on counts up to now).
pub fn paused_after(start: Instant) -> Duration {
    if !EVER.load(Ordering::Relaxed) {
        return Duration::ZERO;
    }
    let log = log();
    let now = Instant::now();
    let ongoing = log.since.map(|since| (since, now));
    log.spans
        .iter()
        .copied()
        .chain(ongoing)
        .map(|(from, to)| to.saturating_duration_since(from.max(start)))
        .sum()
}

/// `deadline`, counted from `start`, moved later by the time paused since `start`.
pub fn shifted(start: Instant, deadline: Instant) -> Instant {
    deadline + paused_after(start)
}

/// Time since `start`, less the time paused.
pub fn active_since(start: Instant) -> Duration {
    start.elapsed().saturating_sub(paused_after(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_move_deadlines_that_started_before_them() {
        let start = Instant::now();
        assert_eq!(paused_after(start), Duration::ZERO);
        begin();
        std::thread::sleep(Duration::from_millis(30));
        let during = paused_after(start);
        assert!(during >= Duration::from_millis(30), "{during:?}");
        end();
        let after_start = Instant::now();
        let total = paused_after(start);
        assert!(total >= during);
        // A deadline that began after the pause is not moved.
        assert_eq!(paused_after(after_start), Duration::ZERO);
        assert!(shifted(start, start) >= start + Duration::from_millis(30));
        assert!(active_since(start) < start.elapsed());
    }
}
