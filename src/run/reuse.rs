//! `--resume` at run time: a task's item source that hands the items an earlier run finished
//! straight to the collector as reused results, and lets the rest through to be run.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use serde_json::Value;

use crate::exec::Event;
use crate::items::Source;
use crate::record::ItemRecord;
use crate::record::resume::Previous;

/// Reused results travel to the collector in batches of this many.
const BATCH: usize = 1024;

/// Wraps a task's items: the ones already done go straight to `events` as reused
/// results; the rest come out to be run.
pub fn skip_done(
    previous: &Arc<Previous>,
    function_hash: String,
    items: Source,
    events: SyncSender<Event>,
    task: usize,
) -> Source {
    Source::Items(Box::new(SkipDone {
        previous: Arc::clone(previous),
        function_hash,
        items,
        events,
        task,
        reused: Vec::new(),
    }))
}

struct SkipDone {
    previous: Arc<Previous>,
    function_hash: String,
    items: Source,
    events: SyncSender<Event>,
    task: usize,
    reused: Vec<ItemRecord>,
}

impl SkipDone {
    fn send(&mut self) {
        if !self.reused.is_empty() {
            let records = std::mem::take(&mut self.reused);
            // A closed channel: the run is being torn down.
            let _ = self.events.send(Event::Finished {
                task: self.task,
                records,
            });
        }
    }
}

impl Iterator for SkipDone {
    type Item = (u64, Result<Value, String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((index, input)) = self.items.next() else {
                self.send();
                return None;
            };
            let done = input
                .as_ref()
                .ok()
                .and_then(|value| self.previous.reuse(&self.function_hash, index, value));
            match done {
                Some(record) => {
                    self.reused.push(record);
                    if self.reused.len() >= BATCH {
                        self.send();
                    }
                }
                None => return Some((index, input)),
            }
        }
    }
}
