//! Items running longer than `SLOW_AFTER`, for the progress display (nextest's SLOW lines):
//! a slot puts its item here once it passes the mark and takes it off when it ends. Quick
//! items never touch it, so it costs nothing per item.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An item is slow once it has run this long.
pub const SLOW_AFTER: Duration = Duration::from_secs(5);
/// Characters of a slow item's input shown.
const INPUT_CHARS: usize = 40;

/// A slow item, as the display shows it.
#[derive(Debug, Clone)]
pub struct SlowItem {
    slot: usize,
    pub task: usize,
    pub index: u64,
    pub input: String,
    pub since: Instant,
}

#[derive(Default)]
pub struct SlowItems {
    items: Mutex<Board>,
    slots: AtomicUsize,
}

#[derive(Default)]
struct Board {
    /// Running now.
    running: Vec<SlowItem>,
    /// Turned slow since the display last looked (it may have ended meanwhile).
    fresh: Vec<SlowItem>,
}

impl SlowItems {
    /// A number for a new slot, to mark its items by.
    pub fn slot(&self) -> usize {
        self.slots.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `slot`'s item `index` of `task` has run since `since`: slow, if that is long enough.
    /// Returns whether it is marked slow now.
    pub fn check(
        &self,
        slot: usize,
        task: usize,
        index: u64,
        input: &Value,
        since: Instant,
    ) -> bool {
        if since.elapsed() < SLOW_AFTER {
            return false;
        }
        let mut board = self.lock();
        if !board
            .running
            .iter()
            .any(|i| i.slot == slot && i.index == index)
        {
            board.running.retain(|i| i.slot != slot);
            let mut text = match input {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Some((cut, _)) = text.char_indices().nth(INPUT_CHARS) {
                text.truncate(cut);
                text.push('…');
            }
            let item = SlowItem {
                slot,
                task,
                index,
                input: crate::visible::visible_line(&text).into_owned(),
                since,
            };
            board.fresh.push(item.clone());
            board.running.push(item);
        }
        true
    }

    /// `slot`'s slow item ended.
    pub fn clear(&self, slot: usize) {
        self.lock().running.retain(|i| i.slot != slot);
    }

    /// The slow items running now, longest-running first, and those that turned slow since
    /// the last call (some may have ended already: each is still worth its one line).
    pub fn now(&self) -> (Vec<SlowItem>, Vec<SlowItem>) {
        let mut board = self.lock();
        let mut running = board.running.clone();
        running.sort_by_key(|i| i.since);
        (running, std::mem::take(&mut board.fresh))
    }
}
