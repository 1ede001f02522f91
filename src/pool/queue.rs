//! The shared work queue: a task's lazy item source plus the items handed back for another
//! attempt (retries, or items a replaced worker never got to).

use std::collections::VecDeque;
use std::sync::Mutex;

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
}

type Source = Box<dyn Iterator<Item = Result<Value, String>> + Send>;

struct State {
    source: Source,
    next_index: u64,
    /// Handed-back items go first, so retries and re-dispatched items are not starved.
    front: VecDeque<WorkItem>,
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
                next_index: 0,
                front: VecDeque::new(),
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

    /// Moves up to `max` items into `out`.
    pub fn take(&self, max: usize, out: &mut VecDeque<WorkItem>) -> usize {
        let mut state = self.lock();
        let mut taken = 0;
        while taken < max {
            let item = match state.front.pop_front() {
                Some(item) => item,
                None => match state.source.next() {
                    Some(input) => {
                        let index = state.next_index;
                        state.next_index += 1;
                        WorkItem {
                            index,
                            input,
                            attempts: 0,
                        }
                    }
                    None => break,
                },
            };
            out.push_back(item);
            taken += 1;
        }
        taken
    }

    /// Puts items back at the front, keeping their order.
    pub fn put_back(&self, items: impl DoubleEndedIterator<Item = WorkItem>) {
        let mut state = self.lock();
        for item in items.rev() {
            state.front.push_front(item);
        }
    }

    /// Hands every remaining item to `each`, emptying the queue (used when the run stops).
    pub fn drain(&self, mut each: impl FnMut(WorkItem)) {
        loop {
            let mut batch = VecDeque::new();
            if self.take(4096, &mut batch) == 0 {
                return;
            }
            batch.into_iter().for_each(&mut each);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: i64) -> Source {
        Box::new((0..n).map(|i| Ok(Value::from(i))))
    }

    #[test]
    fn take_numbers_items_in_order_and_put_back_goes_first() {
        let queue = WorkQueue::new(numbers(5));
        let mut got = VecDeque::new();
        assert_eq!(queue.take(3, &mut got), 3);
        let indices: Vec<u64> = got.iter().map(|i| i.index).collect();
        assert_eq!(indices, [0, 1, 2]);
        queue.put_back(got.drain(1..));
        let mut next = VecDeque::new();
        queue.take(10, &mut next);
        let indices: Vec<u64> = next.iter().map(|i| i.index).collect();
        assert_eq!(indices, [1, 2, 3, 4]);
    }

    #[test]
    fn drain_empties_the_queue() {
        let queue = WorkQueue::new(numbers(10_000));
        let mut count = 0;
        queue.drain(|_| count += 1);
        assert_eq!(count, 10_000);
        assert_eq!(queue.take(1, &mut VecDeque::new()), 0);
    }
}
