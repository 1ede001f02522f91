//! The shared work queue: a task's lazy item source plus the items handed back for another
//! attempt (retries, possibly after a delay, or items a replaced worker never got to).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

/// One item on its way through the pool.
#[derive(Debug)]
pub struct WorkItem {
    /// Position in the task's inputs; results are written in this order.
    pub index: u64,
    /// The input, or why it could not be read (a bad line of a `.jsonl` file, say).
    pub input: Result<Value, String>,
    /// Attempts started so far.
    pub attempts: u32,
    /// A retry waiting for its backoff delay is not handed out before this.
    pub ready_at: Option<Instant>,
}

/// Items with their positions (a resumed run's source skips the ones already done).
pub type Source = Box<dyn Iterator<Item = (u64, Result<Value, String>)> + Send>;

struct State {
    source: Source,
    /// Handed-back items go first, so retries and re-dispatched items are not starved.
    front: VecDeque<WorkItem>,
    /// Retries waiting for their delay (few, so a plain list).
    delayed: Vec<WorkItem>,
}

/// What `take` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// This many items were moved out.
    Items(usize),
    /// Nothing is ready yet; a delayed retry becomes ready at this instant.
    WaitUntil(Instant),
    /// Nothing is left at all.
    Exhausted,
}

/// Items not yet dispatched. Slots take batches under one short lock.
pub struct WorkQueue {
    state: Mutex<State>,
}

impl WorkQueue {
    pub fn new(source: Source) -> WorkQueue {
        WorkQueue {
            state: Mutex::new(State {
                source,
                front: VecDeque::new(),
                delayed: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A slot that panicked while holding the lock left the queue consistent (every
        // operation is a push or a pop), so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves up to `max` ready items into `out`.
    pub fn take(&self, max: usize, out: &mut VecDeque<WorkItem>) -> Taken {
        let mut state = self.lock();
        if !state.delayed.is_empty() {
            let now = Instant::now();
            let (ready, waiting): (Vec<_>, Vec<_>) = state
                .delayed
                .drain(..)
                .partition(|item| item.ready_at.is_none_or(|at| at <= now));
            state.delayed = waiting;
            for item in ready.into_iter().rev() {
                state.front.push_front(item);
            }
        }
        let mut taken = 0;
        while taken < max {
            let item = match state.front.pop_front() {
                Some(item) => item,
                None => match state.source.next() {
                    Some((index, input)) => WorkItem {
                        index,
                        input,
                        attempts: 0,
                        ready_at: None,
                    },
                    None => break,
                },
            };
            out.push_back(item);
            taken += 1;
        }
        if taken > 0 {
            Taken::Items(taken)
        } else {
            match state.delayed.iter().filter_map(|item| item.ready_at).min() {
                Some(at) => Taken::WaitUntil(at),
                None => Taken::Exhausted,
            }
        }
    }

    /// Puts items back: ready ones at the front, keeping their order; delayed ones aside.
    pub fn put_back(&self, items: impl DoubleEndedIterator<Item = WorkItem>) {
        let mut state = self.lock();
        for item in items.rev() {
            if item.ready_at.is_some_and(|at| at > Instant::now()) {
                state.delayed.push(item);
            } else {
                state.front.push_front(item);
            }
        }
    }

    /// Hands every remaining item (delayed ones too) to `each`, emptying the queue (used when
    /// the run stops).
    pub fn drain(&self, mut each: impl FnMut(WorkItem)) {
        let delayed = std::mem::take(&mut self.lock().delayed);
        delayed.into_iter().for_each(&mut each);
        loop {
            let mut batch = VecDeque::new();
            if !matches!(self.take(4096, &mut batch), Taken::Items(_)) {
                return;
            }
            batch.into_iter().for_each(&mut each);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn numbers(n: i64) -> Source {
        Box::new((0..n).map(|i| (i as u64, Ok(Value::from(i)))))
    }

    #[test]
    fn take_numbers_items_in_order_and_put_back_goes_first() {
        let queue = WorkQueue::new(numbers(5));
        let mut got = VecDeque::new();
        assert_eq!(queue.take(3, &mut got), Taken::Items(3));
        let indices: Vec<u64> = got.iter().map(|i| i.index).collect();
        assert_eq!(indices, [0, 1, 2]);
        queue.put_back(got.drain(1..));
        let mut next = VecDeque::new();
        queue.take(10, &mut next);
        let indices: Vec<u64> = next.iter().map(|i| i.index).collect();
        assert_eq!(indices, [1, 2, 3, 4]);
        assert_eq!(queue.take(1, &mut next), Taken::Exhausted);
    }

    #[test]
    fn delayed_items_wait_for_their_time() {
        let queue = WorkQueue::new(numbers(0));
        let at = Instant::now() + Duration::from_millis(50);
        let item = WorkItem {
            index: 7,
            input: Ok(Value::Null),
            attempts: 1,
            ready_at: Some(at),
        };
        queue.put_back(std::iter::once(item));
        let mut out = VecDeque::new();
        assert_eq!(queue.take(1, &mut out), Taken::WaitUntil(at));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(queue.take(1, &mut out), Taken::Items(1));
        assert_eq!(out[0].index, 7);
    }

    #[test]
    fn drain_empties_the_queue() {
        let queue = WorkQueue::new(numbers(10_000));
        let mut count = 0;
        queue.drain(|_| count += 1);
        assert_eq!(count, 10_000);
        assert_eq!(queue.take(1, &mut VecDeque::new()), Taken::Exhausted);
    }
}
