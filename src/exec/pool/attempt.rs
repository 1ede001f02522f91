//! How an attempt ended, and what follows from it: another attempt (as the task's retry
//! policy says) or the item's final record. Shared by every kind of slot.

use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;

use super::queue::{WorkItem, WorkQueue};
use crate::exec::TaskRun;
use crate::job::{Backoff, RetryOn, RetryPolicy};
use crate::process::Usage;
use crate::record::{ItemRecord, Status, Truncated};

/// The end of one attempt at one item.
#[derive(Debug)]
pub enum Attempt {
    /// The function's output, as JSON text.
    Ok(Box<RawValue>),
    Failed(Failure),
}

/// Why an attempt failed. The kinds are what `retries.on` can select.
#[derive(Debug)]
pub enum Failure {
    /// The function reported an error (a builtin's message, a worker's `error`, a Python
    /// exception, output that could not be parsed).
    Error(String),
    /// The item ran past its timeout and its process group was killed.
    TimedOut(String),
    /// The process died by a signal, or a worker exited or broke the protocol.
    Crashed(String),
    /// A command exited with a non-zero code.
    Exited { code: i32, message: String },
    /// The run was stopped (a signal, its deadline) while the item ran: never retried.
    Interrupted(String),
    /// The input itself could not be read (a bad line of an input file): never retried.
    BadInput(String),
}

impl Failure {
    fn matches(&self, on: RetryOn) -> bool {
        match (self, on) {
            (Failure::Error(_), RetryOn::Error) => true,
            (Failure::TimedOut(_), RetryOn::Timeout) => true,
            (Failure::Crashed(_), RetryOn::Crash) => true,
            (Failure::Exited { code, .. }, RetryOn::Exit(wanted)) => *code == wanted,
            _ => false,
        }
    }

    fn retryable(&self, policy: &RetryPolicy) -> bool {
        match self {
            Failure::Interrupted(_) | Failure::BadInput(_) => false,
            _ => policy.on.is_empty() || policy.on.iter().any(|on| self.matches(*on)),
        }
    }

    fn into_parts(self) -> (Status, String) {
        match self {
            Failure::TimedOut(message) => (Status::TimedOut, message),
            Failure::Error(message)
            | Failure::Crashed(message)
            | Failure::Exited { message, .. }
            | Failure::Interrupted(message)
            | Failure::BadInput(message) => (Status::Failed, message),
        }
    }
}

/// The wait before attempt number `attempts + 1`.
pub fn retry_delay(policy: &RetryPolicy, attempts: u32) -> Duration {
    let delay = match policy.backoff {
        Backoff::Fixed => policy.delay,
        Backoff::Exponential => {
            let doublings = attempts.saturating_sub(1).min(30);
            policy.delay.saturating_mul(1 << doublings)
        }
    };
    delay.min(policy.max_delay)
}

/// What a slot knows about an attempt besides its outcome.
pub struct AttemptInfo {
    /// Pid of the process that ran it.
    pub pid: Option<u32>,
    pub ended: Instant,
    /// Seconds it took.
    pub duration: f64,
    /// What its process used, where that is known for the attempt alone.
    pub usage: Option<Usage>,
    /// The captured streams cut at the cap.
    pub truncated: Option<Truncated>,
    /// What a command printed, kept in the record only if the attempt is the item's last
    /// and failed (an ok item's stdout is its output).
    pub printed: Printed,
}

/// A command's captured stdout and stderr tail, as text; `None` when it printed nothing.
#[derive(Debug, Default)]
pub struct Printed {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// Ends an attempt: a failure with attempts left (and of a kind the policy retries) goes back
/// to the queue after the policy's delay; anything else becomes a record in `out`.
pub fn conclude(
    ctx: &TaskRun<'_>,
    queue: &WorkQueue,
    mut item: WorkItem,
    attempt: Attempt,
    info: AttemptInfo,
    out: &mut Vec<ItemRecord>,
) {
    let policy = &ctx.task.retry;
    let mut printed = info.printed;
    let (status, output, error) = match attempt {
        Attempt::Ok(output) => {
            printed = Printed::default();
            (Status::Ok, Some(output), None)
        }
        Attempt::Failed(failure) => {
            if item.attempts <= policy.count
                && failure.retryable(policy)
                && ctx.control.may_dispatch()
            {
                let delay = retry_delay(policy, item.attempts);
                item.ready_at = (!delay.is_zero()).then(|| Instant::now() + delay);
                queue.put_back(std::iter::once(item));
                return;
            }
            ctx.control.record_failure();
            let (status, message) = failure.into_parts();
            (status, None, Some(message))
        }
    };
    let started = info
        .ended
        .checked_sub(Duration::from_secs_f64(info.duration.max(0.0)))
        .unwrap_or(info.ended)
        .saturating_duration_since(ctx.run_start)
        .as_secs_f64();
    out.push(ItemRecord {
        index: item.index,
        input: item.input.unwrap_or(Value::Null),
        status,
        output,
        truncated: info.truncated,
        error,
        stdout: printed.stdout,
        stderr: printed.stderr,
        attempts: item.attempts,
        started_s: started,
        duration_s: info.duration,
        worker: info.pid,
        cpu_s: info.usage.map(|u| u.cpu_s),
        max_rss_kib: info.usage.and_then(|u| u.max_rss_kib),
        node: None,
        // The collector stamps records of inputs that name files.
        fingerprint: None,
        reused_from: None,
        computed_at: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, on: Vec<RetryOn>) -> RetryPolicy {
        RetryPolicy {
            count: 5,
            backoff,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            on,
        }
    }

    #[test]
    fn exponential_backoff_doubles_up_to_the_cap() {
        let p = policy(Backoff::Exponential, vec![]);
        let waits: Vec<u64> = (1..=5).map(|a| retry_delay(&p, a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        let fixed = policy(Backoff::Fixed, vec![]);
        assert_eq!(retry_delay(&fixed, 4), Duration::from_secs(1));
    }

    #[test]
    fn retry_on_selects_failure_kinds() {
        let p = policy(Backoff::Fixed, vec![RetryOn::Timeout, RetryOn::Exit(75)]);
        assert!(Failure::TimedOut(String::new()).retryable(&p));
        assert!(
            Failure::Exited {
                code: 75,
                message: String::new()
            }
            .retryable(&p)
        );
        assert!(
            !Failure::Exited {
                code: 1,
                message: String::new()
            }
            .retryable(&p)
        );
        assert!(!Failure::Error(String::new()).retryable(&p));
        let any = policy(Backoff::Fixed, vec![]);
        assert!(Failure::Crashed(String::new()).retryable(&any));
        assert!(!Failure::Interrupted(String::new()).retryable(&any));
        assert!(!Failure::BadInput(String::new()).retryable(&any));
    }
}
