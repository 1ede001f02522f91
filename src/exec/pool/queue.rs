//! The shared work queue: a task's lazy item source plus the items handed back for another
//! attempt (retries, possibly after a delay, or items a replaced worker never got to).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

pub use crate::items::{IntRun, Source};

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
    /// It was in flight with others when their worker crashed, so which of them crashed it
    /// is unknown: it goes out alone (see `take_work`), and a crash then is its own.
    pub suspect: bool,
}

/// The items of `run` one by one, with `attempts` attempts started.
fn run_items(run: IntRun, attempts: u32) -> impl Iterator<Item = WorkItem> {
    (0..run.count).map(move |k| WorkItem {
        index: run.first + k,
        input: Ok(Value::from(run.input(k))),
        attempts,
        ready_at: None,
        suspect: false,
    })
}

/// What a slot takes from the queue: one item, or a run of integer items never attempted.
#[derive(Debug)]
pub enum Work {
    One(WorkItem),
    Ints(IntRun),
}

impl Work {
    /// How many items.
    pub fn len(&self) -> u64 {
        match self {
            Work::One(_) => 1,
            Work::Ints(run) => run.count,
        }
    }

    /// The items one by one; a run's with `attempts` attempts started.
    pub fn into_items(self, attempts: u32) -> impl Iterator<Item = WorkItem> {
        let (one, run) = match self {
            Work::One(item) => (Some(item), None),
            Work::Ints(run) => (None, Some(run)),
        };
        one.into_iter().chain(
            run.into_iter()
                .flat_map(move |run| run_items(run, attempts)),
        )
    }
}

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
    /// This many items were moved out (none when a suspect waits for an idle taker).
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

    /// Moves up to `max` ready items into `out`, one by one.
    pub fn take(&self, max: usize, out: &mut VecDeque<WorkItem>) -> Taken {
        let mut work = VecDeque::new();
        let taken = self.take_work(max, false, false, &mut work);
        out.extend(work.into_iter().flat_map(|work| work.into_items(0)));
        taken
    }

    /// Moves up to `max` ready items into `out`; a `range`'s as runs when `runs` says the
    /// taker can send them so (builtin workers). A suspect item is handed out alone, and
    /// only to a taker with nothing in flight (`busy` false).
    pub fn take_work(&self, max: usize, runs: bool, busy: bool, out: &mut VecDeque<Work>) -> Taken {
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
        let mut held = false;
        while taken < max {
            if let Some(item) = state.front.pop_front() {
                if item.suspect {
                    if taken > 0 || busy {
                        held = true;
                        state.front.push_front(item);
                    } else {
                        out.push_back(Work::One(item));
                        taken = 1;
                    }
                    break;
                }
                out.push_back(Work::One(item));
                taken += 1;
                continue;
            }
            match &mut state.source {
                Source::Ints(run) if run.count > 0 => {
                    if runs {
                        let run = run.split_front((max - taken) as u64);
                        taken += run.count as usize;
                        out.push_back(Work::Ints(run));
                    } else {
                        out.extend(run_items(run.split_front(1), 0).map(Work::One));
                        taken += 1;
                    }
                }
                Source::Ints(_) => break,
                Source::Items(items) => match items.next() {
                    Some((index, input)) => {
                        out.push_back(Work::One(WorkItem {
                            index,
                            input,
                            attempts: 0,
                            ready_at: None,
                            suspect: false,
                        }));
                        taken += 1;
                    }
                    None => break,
                },
            }
        }
        if taken > 0 || held {
            Taken::Items(taken)
        } else {
            match state.delayed.iter().filter_map(|item| item.ready_at).min() {
                Some(at) => Taken::WaitUntil(at),
                None => Taken::Exhausted,
            }
        }
    }

    /// Whether anything is left to take, now or after a delay (an item of a lazy source is
    /// read ahead to know).
    pub fn has_work(&self) -> bool {
        let mut state = self.lock();
        if !state.front.is_empty() || !state.delayed.is_empty() {
            return true;
        }
        match &mut state.source {
            Source::Ints(run) => run.count > 0,
            Source::Items(items) => match items.next() {
                Some((index, input)) => {
                    state.front.push_back(WorkItem {
                        index,
                        input,
                        attempts: 0,
                        ready_at: None,
                        suspect: false,
                    });
                    true
                }
                None => false,
            },
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
        Source::Items(Box::new((0..n).map(|i| (i as u64, Ok(Value::from(i))))))
    }

    #[test]
    fn a_range_is_taken_as_runs_and_handed_back_items_go_first() {
        let run = IntRun {
            first: 0,
            start: 10,
            step: -3,
            count: 5,
        };
        let queue = WorkQueue::new(Source::Ints(run));
        let mut got = VecDeque::new();
        assert_eq!(queue.take_work(2, true, false, &mut got), Taken::Items(2));
        let Some(Work::Ints(first)) = got.pop_front() else {
            panic!("a run");
        };
        assert_eq!((first.first, first.start, first.count), (0, 10, 2));
        let items: Vec<WorkItem> = Work::Ints(first).into_items(1).collect();
        assert_eq!(items[1].index, 1);
        assert_eq!(items[1].input.as_ref().unwrap(), &Value::from(7));
        assert_eq!(items[1].attempts, 1);
        queue.put_back(items.into_iter().skip(1));
        let mut next = VecDeque::new();
        assert_eq!(queue.take(10, &mut next), Taken::Items(4));
        let inputs: Vec<Value> = next.iter().map(|i| i.input.clone().unwrap()).collect();
        assert_eq!(inputs, [7, 4, 1, -2]);
        assert_eq!(queue.take(1, &mut next), Taken::Exhausted);
    }

    #[test]
    fn a_suspect_goes_alone_and_only_to_an_idle_taker() {
        let queue = WorkQueue::new(numbers(3));
        let mut got = VecDeque::new();
        queue.take_work(3, false, false, &mut got);
        let suspects: Vec<WorkItem> = got.drain(..).flat_map(|work| work.into_items(0)).collect();
        queue.put_back(suspects.into_iter().map(|item| WorkItem {
            suspect: true,
            ..item
        }));
        assert_eq!(queue.take_work(8, false, true, &mut got), Taken::Items(0));
        assert!(got.is_empty(), "a busy taker gets no suspect");
        for index in 0..3 {
            assert_eq!(queue.take_work(8, false, false, &mut got), Taken::Items(1));
            let Some(Work::One(item)) = got.pop_front() else {
                panic!("one item");
            };
            assert_eq!((item.index, item.suspect), (index, true));
        }
        assert_eq!(queue.take_work(8, false, true, &mut got), Taken::Exhausted);
    }

    #[test]
    fn int_runs_reach_the_ends_of_i64_exactly() {
        let mut run = IntRun {
            first: 0,
            start: i64::MIN,
            step: i64::MAX,
            count: 3,
        };
        let values: Vec<i64> = (0..3).map(|k| run.input(k)).collect();
        assert_eq!(values, [i64::MIN, -1, i64::MAX - 1]);
        run.split_front(2);
        assert_eq!((run.first, run.start, run.count), (2, i64::MAX - 1, 1));
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
            suspect: false,
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
