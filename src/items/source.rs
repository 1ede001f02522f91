//! A task's items as the executor takes them: positioned inputs, lazily, and a `range` as
//! runs of integers with no value built per item.

use serde_json::Value;

/// Items with their positions (a resumed run's source skips the ones already done).
pub enum Source {
    Items(Box<dyn Iterator<Item = (u64, Result<Value, String>)> + Send>),
    /// A `range`: handed out as runs, with no value built per item.
    Ints(IntRun),
}

impl Iterator for Source {
    type Item = (u64, Result<Value, String>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Source::Items(items) => items.next(),
            Source::Ints(run) => (run.count > 0).then(|| {
                let one = run.split_front(1);
                (one.first, Ok(Value::from(one.start)))
            }),
        }
    }
}

/// Consecutive items with integer inputs in steps: item `first + k` has the input
/// `start + k * step`, for `k < count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRun {
    pub first: u64,
    pub start: i64,
    pub step: i64,
    pub count: u64,
}

impl IntRun {
    /// Item `first + k`'s input. Wrapping arithmetic is exact here: the result fits (it is
    /// a value of the range), only `k * step` on its own may not.
    pub fn input(&self, k: u64) -> i64 {
        self.start.wrapping_add((k as i64).wrapping_mul(self.step))
    }

    /// Takes the first `n` items (at most `count`) off into a run of their own.
    pub fn split_front(&mut self, n: u64) -> IntRun {
        let n = n.min(self.count);
        let front = IntRun { count: n, ..*self };
        self.start = self.input(n);
        self.first += n;
        self.count -= n;
        front
    }
}
