//! An all-`ok` batch of answers (the Python shim's usual line), ended without a record per
//! item: the slot renders the records itself, the outputs as the worker wrote them, and
//! journals them through a descriptor of its own, so the collecting thread (one for all the
//! slots) only writes them into the results file. A batch over a run of integers (a
//! `range` task's) is journaled as one compact `ok_run` line; other batches as records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::MessageSlot;
use crate::exec::Event;
use crate::exec::pool::queue::IntRun;
use crate::record::journal;
use crate::record::{JOURNAL_LINE_END, JournalRange, OkRecord, OkRecordWriter, Rendered, ok_run};
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
        let journal_open = self.journal_file().is_some();
        // Lines as the journal takes them (readers and writers take either end).
        let writer = OkRecordWriter::new(pid, JOURNAL_LINE_END);
        let task = self.ctx.task_index;
        if let Some((run, sent_at)) = self.in_flight.take_front_of_run(batch.first, count) {
            let estimate = batch.outputs_text().len() + run.count as usize * 160;
            let mut bytes = Vec::with_capacity(estimate);
            let timing = self.render_run(&batch, &run, sent_at, at, &writer, &mut bytes);
            // The journal gets the batch's compact line, a tenth of its records' size; the
            // records go on to the results file from here.
            let journaled = if journal_open {
                let mut line = Vec::with_capacity(batch.outputs_text().len() + 200);
                let run = ok_run::Run {
                    first: run.first,
                    count: run.count,
                    start: run.start,
                    step: run.step,
                };
                ok_run::write_line(&mut line, &run, timing, pid, batch.outputs_text());
                self.append_to_journal(&line)
            } else {
                None
            };
            self.send_rendered(batch.first, bytes, journaled);
            return Ok(());
        }
        // The buffer of the batch before, when its records went to the journal: a fresh one
        // each time costs page faults as big as the batch.
        let mut bytes = std::mem::take(&mut self.batch_lines);
        bytes.clear();
        self.render_items(&batch, at, &writer, &mut bytes);
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
        self.send_rendered(batch.first, bytes, None);
        Ok(())
    }

    /// Passes records rendered here on to the collector, with where they were journaled
    /// (`None`: for the collector to journal).
    fn send_rendered(&self, first: u64, lines: Vec<u8>, journaled: Option<JournalRange>) {
        let rendered = Rendered::from_lines(lines).expect("every line was written whole");
        let _ = self.ctx.events.send(Event::Rendered {
            task: self.ctx.task_index,
            first,
            rendered,
            journaled,
        });
    }

    /// Renders the records of a batch that answered (the front of) a run of integers sent
    /// together: they share their timing, so all but the index, input and output is
    /// written once for the batch. Returns their start and duration, in nanoseconds.
    fn render_run(
        &mut self,
        batch: &OkBatch,
        run: &IntRun,
        sent_at: Instant,
        at: Instant,
        writer: &OkRecordWriter,
        bytes: &mut Vec<u8>,
    ) -> (u64, u64) {
        let duration = self.item_duration(sent_at, at, batch.each_duration());
        // As one `learn_duration` per item would (the first calls are all that matter).
        for _ in 0..run.count.min(64) {
            self.learn_duration(duration);
        }
        let (started_ns, duration_ns) = self.timing(at, duration);
        let tail = writer.shared_tail(1, started_ns, duration_ns);
        let mut int = itoa::Buffer::new();
        for k in 0..run.count {
            OkRecordWriter::write_head(bytes, run.first + k, int.format(run.input(k)).as_bytes());
            bytes.extend_from_slice(batch.output(k as usize).as_bytes());
            bytes.extend_from_slice(&tail);
        }
        (started_ns, duration_ns)
    }

    /// Renders the records of a batch item by item (its items were sent one by one).
    fn render_items(
        &mut self,
        batch: &OkBatch,
        at: Instant,
        writer: &OkRecordWriter,
        bytes: &mut Vec<u8>,
    ) {
        let each = batch.each_duration();
        let mut input = Vec::new();
        for i in 0..batch.len() {
            let (item, sent_at) = self
                .in_flight
                .take_oldest()
                .expect("the batch's items are in flight, checked before");
            let duration = self.item_duration(sent_at, at, each);
            self.learn_duration(duration);
            let (started_ns, duration_ns) = self.timing(at, duration);
            input.clear();
            let value = item.input.as_ref().unwrap_or(&serde_json::Value::Null);
            serde_json::to_writer(&mut input, value).expect("a JSON value always serializes");
            let record = OkRecord {
                index: item.index,
                input: &input,
                attempts: item.attempts,
                started_ns,
                duration_ns,
                cpu_ns: None,
            };
            writer.write_line(bytes, &record, |out| {
                out.extend_from_slice(batch.output(i).as_bytes())
            });
        }
    }

    /// When an item that ended at `at` after `duration` seconds started (since the run
    /// started), and how long it ran, in nanoseconds.
    fn timing(&self, at: Instant, duration: f64) -> (u64, u64) {
        let started = at
            .checked_sub(Duration::from_secs_f64(duration.max(0.0)))
            .unwrap_or(at)
            .saturating_duration_since(self.ctx.run_start);
        (
            u64::try_from(started.as_nanos()).unwrap_or(u64::MAX),
            (duration.max(0.0) * 1e9).round() as u64,
        )
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
