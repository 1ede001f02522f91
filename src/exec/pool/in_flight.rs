//! The items a worker was sent and has not answered yet, oldest first.
//!
//! A `range` is sent as runs of items (`IntRun`), and a run stays one entry while it is in
//! flight: a million tiny items cost no per-item bookkeeping unless one of them needs it (an
//! error, a timeout, an answer out of order), and then only that item is taken out of its run.

use std::collections::VecDeque;
use std::time::Instant;

use super::queue::{IntRun, Work, WorkItem};

struct Entry {
    /// A single item has its attempts counted already; a run's items are on attempt 1.
    work: Work,
    sent_at: Instant,
}

#[derive(Default)]
pub struct InFlight {
    entries: VecDeque<Entry>,
    len: usize,
}

impl InFlight {
    /// How many items.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, work: Work, sent_at: Instant) {
        self.len += work.len() as usize;
        self.entries.push_back(Entry { work, sent_at });
    }

    /// Whether items `first`, `first + 1`, … (`count` of them) are the oldest, in order.
    pub fn starts_with(&self, first: u64, count: u64) -> bool {
        let end = first.saturating_add(count);
        let mut expected = first;
        for entry in &self.entries {
            if expected == end {
                break;
            }
            match &entry.work {
                Work::One(item) if item.index == expected => expected += 1,
                Work::Ints(run) if run.first == expected => {
                    expected += run.count.min(end - expected);
                }
                _ => return false,
            }
        }
        expected == end
    }

    /// Forgets the `count` oldest items (answered).
    pub fn drop_oldest(&mut self, mut count: u64) {
        while count > 0 {
            let Some(entry) = self.entries.front_mut() else {
                return;
            };
            let len = entry.work.len();
            if len <= count {
                self.entries.pop_front();
                self.len -= len as usize;
                count -= len;
            } else {
                if let Work::Ints(run) = &mut entry.work {
                    run.split_front(count);
                }
                self.len -= count as usize;
                count = 0;
            }
        }
    }

    /// Takes the `count` oldest items off when they begin a run of integers that starts at
    /// `first` (what a batch answered in order usually is): the run they were sent in, and
    /// when; `None`, taking nothing, otherwise.
    pub fn take_front_of_run(&mut self, first: u64, count: u64) -> Option<(IntRun, Instant)> {
        let entry = self.entries.front_mut()?;
        let Work::Ints(run) = &mut entry.work else {
            return None;
        };
        if run.first != first || run.count < count {
            return None;
        }
        let front = run.split_front(count);
        let sent_at = entry.sent_at;
        if run.count == 0 {
            self.entries.pop_front();
        }
        self.len -= count as usize;
        Some((front, sent_at))
    }

    pub fn contains(&self, index: u64) -> bool {
        self.entries.iter().any(|entry| match &entry.work {
            Work::One(item) => item.index == index,
            Work::Ints(run) => (run.first..run.first + run.count).contains(&index),
        })
    }

    /// Takes item `index` out, with when it was sent.
    pub fn take(&mut self, index: u64) -> Option<(WorkItem, Instant)> {
        let position = self.entries.iter().position(|entry| match &entry.work {
            Work::One(item) => item.index == index,
            Work::Ints(run) => (run.first..run.first + run.count).contains(&index),
        })?;
        self.len -= 1;
        let entry = &mut self.entries[position];
        let sent_at = entry.sent_at;
        let run = match &mut entry.work {
            Work::Ints(run) => run,
            Work::One(_) => {
                let entry = self.entries.remove(position)?;
                return entry.work.into_items(1).next().map(|item| (item, sent_at));
            }
        };
        // Split the run around the item: what comes before stays in place, what comes after
        // follows it.
        let mut rest = *run;
        let before = rest.split_front(index - run.first);
        let one = rest.split_front(1);
        let after = rest;
        let item = Work::Ints(one).into_items(1).next()?;
        match (before.count, after.count) {
            (0, 0) => {
                self.entries.remove(position);
            }
            (0, _) => *run = after,
            (_, 0) => *run = before,
            _ => {
                *run = before;
                let after = Entry {
                    work: Work::Ints(after),
                    sent_at,
                };
                self.entries.insert(position + 1, after);
            }
        }
        Some((item, sent_at))
    }

    /// Whether a suspect item is in flight (it is sent alone, so it is the only one).
    pub fn holds_suspect(&self) -> bool {
        self.len == 1
            && self
                .entries
                .front()
                .is_some_and(|entry| matches!(&entry.work, Work::One(item) if item.suspect))
    }

    /// The oldest item's index and input: the one the worker is running.
    pub fn oldest(&self) -> Option<(u64, serde_json::Value)> {
        match &self.entries.front()?.work {
            Work::One(item) => Some((item.index, item.input.clone().unwrap_or_default())),
            Work::Ints(run) => Some((run.first, serde_json::Value::from(run.start))),
        }
    }

    /// Takes the oldest item out, with when it was sent.
    pub fn take_oldest(&mut self) -> Option<(WorkItem, Instant)> {
        let index = match &self.entries.front()?.work {
            Work::One(item) => item.index,
            Work::Ints(run) => run.first,
        };
        self.take(index)
    }

    /// Takes every item out, oldest first, with its attempt taken back: these go back to
    /// the queue, never having started.
    pub fn take_all_unstarted(&mut self) -> Vec<WorkItem> {
        self.len = 0;
        self.entries
            .drain(..)
            .flat_map(|entry| entry.work.into_items(1))
            .map(|mut item| {
                item.attempts -= 1;
                item
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::pool::queue::IntRun;
    use serde_json::Value;

    /// Items `first`… with inputs ten times their index.
    fn run(first: u64, count: u64) -> IntRun {
        IntRun {
            first,
            start: first as i64 * 10,
            step: 10,
            count,
        }
    }

    fn one(index: u64) -> Work {
        Work::One(WorkItem {
            index,
            input: Ok(Value::from(index)),
            attempts: 1,
            ready_at: None,
            suspect: false,
        })
    }

    fn in_flight() -> InFlight {
        let mut f = InFlight::default();
        let now = Instant::now();
        f.push(one(0), now);
        f.push(Work::Ints(run(1, 5)), now);
        f.push(one(6), now);
        f
    }

    #[test]
    fn answers_in_order_drop_whole_runs_and_parts_of_runs() {
        let mut f = in_flight();
        assert_eq!(f.len(), 7);
        assert!(f.starts_with(0, 3));
        assert!(f.starts_with(0, 7));
        assert!(!f.starts_with(1, 2));
        assert!(!f.starts_with(0, 8));
        f.drop_oldest(3);
        assert_eq!(f.len(), 4);
        assert!(f.starts_with(3, 4));
        let (item, _) = f.take_oldest().unwrap();
        assert_eq!(
            (item.index, item.input.unwrap(), item.attempts),
            (3, Value::from(30), 1)
        );
        f.drop_oldest(3);
        assert!(f.is_empty());
    }

    #[test]
    fn an_item_taken_from_the_middle_of_a_run_splits_it() {
        let mut f = in_flight();
        let (item, _) = f.take(3).unwrap();
        assert_eq!((item.index, item.input.unwrap()), (3, Value::from(30)));
        assert_eq!(f.len(), 6);
        assert!(!f.contains(3));
        assert!(f.contains(2) && f.contains(4));
        assert!(f.take(3).is_none());
        let (six, _) = f.take(6).unwrap();
        assert_eq!(six.index, 6);
        let rest: Vec<(u64, u32)> = f
            .take_all_unstarted()
            .into_iter()
            .map(|i| (i.index, i.attempts))
            .collect();
        assert_eq!(rest, [(0, 0), (1, 0), (2, 0), (4, 0), (5, 0)]);
        assert!(f.is_empty());
    }
}

/// The in-flight books against the plain list of items they stand for, under random
/// operations.
#[cfg(test)]
mod model {
    use super::*;
    use crate::exec::pool::queue::IntRun;
    use proptest::prelude::*;
    use serde_json::Value;

    #[derive(Debug, Clone)]
    enum Op {
        /// A run of `count` items, or one item when `count` is 0.
        Push {
            count: u64,
        },
        DropOldest {
            count: u64,
        },
        Take {
            nth: usize,
        },
        TakeOldest,
        TakeAll,
    }

    /// How many of the oldest items have consecutive indices.
    fn consecutive(items: &[(u64, i64)]) -> u64 {
        let Some(&(first, _)) = items.first() else {
            return 0;
        };
        items
            .iter()
            .zip(first..)
            .take_while(|((i, _), want)| i == want)
            .count() as u64
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6u64).prop_map(|count| Op::Push { count }),
            (0..8u64).prop_map(|count| Op::DropOldest { count }),
            (0..16usize).prop_map(|nth| Op::Take { nth }),
            Just(Op::TakeOldest),
            Just(Op::TakeAll),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::fuzz_cases(2000)))]

        #[test]
        fn in_flight_books_match_the_items(ops in prop::collection::vec(op(), 0..40)) {
            let mut books = InFlight::default();
            // (index, input) of every item in flight, oldest first.
            let mut items: Vec<(u64, i64)> = Vec::new();
            let mut next = 0u64;
            let now = Instant::now();
            let input = |index: u64| index as i64 * 3 - 7;
            for op in ops {
                match op {
                    Op::Push { count: 0 } => {
                        let item = WorkItem {
                            index: next,
                            input: Ok(Value::from(input(next))),
                            attempts: 1,
                            ready_at: None,
            suspect: false,
                        };
                        books.push(Work::One(item), now);
                        items.push((next, input(next)));
                        next += 1;
                    }
                    Op::Push { count } => {
                        let run = IntRun { first: next, start: input(next), step: 3, count };
                        books.push(Work::Ints(run), now);
                        items.extend((next..next + count).map(|i| (i, input(i))));
                        next += count;
                    }
                    Op::DropOldest { count } => {
                        // Answers in order: only ever for consecutive oldest items.
                        let count = count.min(consecutive(&items));
                        if let Some(&(first, _)) = items.first() {
                            prop_assert!(books.starts_with(first, count));
                        }
                        books.drop_oldest(count);
                        items.drain(..count as usize);
                    }
                    Op::Take { nth } => {
                        let index = items.get(nth).map_or(next + 5, |(i, _)| *i);
                        let taken = books.take(index);
                        match items.iter().position(|(i, _)| *i == index) {
                            Some(at) => {
                                let (want, input) = items.remove(at);
                                let (item, _) = taken.unwrap();
                                prop_assert_eq!(item.index, want);
                                prop_assert_eq!(item.input.unwrap(), Value::from(input));
                                prop_assert_eq!(item.attempts, 1);
                            }
                            None => prop_assert!(taken.is_none()),
                        }
                    }
                    Op::TakeOldest => {
                        let taken = books.take_oldest().map(|(item, _)| item.index);
                        let want = (!items.is_empty()).then(|| items.remove(0).0);
                        prop_assert_eq!(taken, want);
                    }
                    Op::TakeAll => {
                        let all: Vec<(u64, u32)> = books
                            .take_all_unstarted()
                            .into_iter()
                            .map(|item| (item.index, item.attempts))
                            .collect();
                        let want: Vec<(u64, u32)> = items.drain(..).map(|(i, _)| (i, 0)).collect();
                        prop_assert_eq!(all, want);
                    }
                }
                prop_assert_eq!(books.len(), items.len());
                prop_assert_eq!(books.is_empty(), items.is_empty());
                for (index, _) in &items {
                    prop_assert!(books.contains(*index));
                }
                if let Some(&(first, _)) = items.first() {
                    // In order from the oldest, as far as the items are consecutive.
                    let consecutive = consecutive(&items);
                    prop_assert!(books.starts_with(first, consecutive));
                    prop_assert!(!books.starts_with(first, consecutive + 1));
                }
            }
        }
    }
}
