//! An all-`ok` batch of answers (the Python shim's usual line), ended without a record per
//! item: the slot renders the records itself, the outputs as the worker wrote them, and
//! appends them to the journal through a descriptor of its own, so the collecting thread
//! (one for all the slots) only copies them into the results file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::MessageSlot;
use crate::exec::Event;
use crate::record::journal;
use crate::record::{JOURNAL_LINE_END, JournalRange, LINE_END, OkRecord, OkRecordWriter, Rendered};
use crate::worker::protocol::OkBatch;

/// Where a slot appends its records: the journal, opened at the first batch; `Gone` when the
/// run has none for workers to append to, or a write failed.
pub(super) enum SlotJournal {
    NotOpened,
    Open(std::fs::File),
    Gone,
}

impl MessageSlot<'_> {
    /// Ends the in-flight items an all-`ok` batch answers and passes their records on
    /// rendered, the outputs written as the worker wrote them: what `on_reply` and
    /// `attempt::conclude` would make of them, without building a record per item. Hands
    /// the batch back unless it answers the oldest items in order, and more than one.
    pub(super) fn take_ok_batch(
        &mut self,
        batch: OkBatch,
        at: Instant,
        pid: Option<u32>,
    ) -> Result<(), OkBatch> {
        let count = batch.len() as u64;
        let Some(pid) = pid else {
            return Err(batch);
        };
        if count < 2 || !self.in_flight.starts_with(batch.first, count) {
            return Err(batch);
        }
        // Records concluded before go first.
        self.flush_records();
        let each = batch.each_duration();
        let journal = self.journal_file();
        let line_end = if journal.is_some() {
            JOURNAL_LINE_END
        } else {
            LINE_END
        };
        let writer = OkRecordWriter::new(pid, line_end);
        // The buffer of the batch before, when its records went to the journal: a fresh one
        // each time costs page faults as big as the batch.
        let mut bytes = std::mem::take(&mut self.batch_lines);
        bytes.clear();
        let mut input = Vec::new();
        for i in 0..batch.len() {
            let (item, sent_at) = self
                .in_flight
                .take_oldest()
                .expect("the batch's items are in flight, checked above");
            let duration = self.item_duration(sent_at, at, each);
            self.learn_duration(duration);
            let started = at
                .checked_sub(Duration::from_secs_f64(duration.max(0.0)))
                .unwrap_or(at)
                .saturating_duration_since(self.ctx.run_start);
            input.clear();
            let value = item.input.as_ref().unwrap_or(&serde_json::Value::Null);
            serde_json::to_writer(&mut input, value).expect("a JSON value always serializes");
            let record = OkRecord {
                index: item.index,
                input: &input,
                attempts: item.attempts,
                started_ns: u64::try_from(started.as_nanos()).unwrap_or(u64::MAX),
                duration_ns: (duration.max(0.0) * 1e9).round() as u64,
                cpu_ns: None,
            };
            writer.write_line(&mut bytes, &record, |out| {
                out.extend_from_slice(batch.output(i).as_bytes())
            });
        }
        let task = self.ctx.task_index;
        if let Some(range) = self.append_to_journal(&bytes) {
            self.batch_lines = bytes;
            let _ = self.ctx.events.send(Event::Journaled {
                task,
                first: batch.first,
                count,
                range,
            });
            return Ok(());
        }
        let rendered = Rendered::from_lines(bytes).expect("every line was written whole");
        let _ = self.ctx.events.send(Event::Rendered {
            task,
            first: batch.first,
            rendered,
        });
        Ok(())
    }

    /// The slot's own descriptor of the run's journal, opened the first time; `None` when
    /// the run has none for workers to append to (its records need fingerprints, say) or it
    /// failed.
    fn journal_file(&mut self) -> Option<&mut std::fs::File> {
        if let SlotJournal::NotOpened = self.journal {
            let handle = self
                .ctx
                .journal
                .as_ref()
                .filter(|_| self.ctx.stdout.is_none());
            self.journal = match handle.and_then(|h| journal::open_to_append(&h.path)) {
                Some(file) => SlotJournal::Open(file),
                None => SlotJournal::Gone,
            };
        }
        match &mut self.journal {
            SlotJournal::Open(file) => Some(file),
            _ => None,
        }
    }

    /// Appends rendered records to the journal; where they landed, or `None` when there is
    /// no journal to append to or the write failed (then the records go to the collector,
    /// which journals them wherever the journal went, and so do all that follow).
    fn append_to_journal(&mut self, bytes: &[u8]) -> Option<JournalRange> {
        let file = match &mut self.journal {
            SlotJournal::Open(file) => file,
            _ => return None,
        };
        let handle = self.ctx.journal.as_ref()?;
        match journal::append(file, bytes) {
            Ok(offset) => Some(JournalRange {
                file: Arc::clone(&handle.file),
                offset,
                len: bytes.len() as u64,
            }),
            Err(_) => {
                self.journal = SlotJournal::Gone;
                None
            }
        }
    }
}
