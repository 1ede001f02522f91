//! Earlier results at run time (`--resume`, `--reuse`, `reuse = "latest"`): a task's item
//! source that hands the items an earlier run finished, and whose files did not change since,
//! straight to the collector as reused results, and lets the rest through to be run. For a
//! task whose inputs name files it also reads each file's state first (SPEC §8), so the
//! results of this run carry it (`Fingerprints`).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use serde_json::Value;

use super::plan::plural;
use super::target::OutputTarget;
use crate::cli::RunArgs;
use crate::cron::history;
use crate::exec::Event;
use crate::items::Source;
use crate::items::fingerprint::{self, Fingerprints};
use crate::job::{FileStateRule, Job};
use crate::record::ItemRecord;
use crate::record::resume::Previous;

/// Reused results travel to the collector in batches of this many.
const BATCH: usize = 1024;

/// `reuse = "latest"`: the results of the newest earlier results file of the job's own
/// output template, when neither `--resume`, `--reuse` nor `-o` says otherwise.
pub fn latest(job: &Job, target: &OutputTarget, args: &RunArgs) -> Option<Arc<Previous>> {
    if !job.output.reuse_latest || !target.own || args.resume.is_some() || args.reuse.is_some() {
        return None;
    }
    let from = history::newest(&job.output.path_template, &job.name)?;
    match Previous::load(&from, &[]) {
        Ok(Some(previous)) => {
            tell_loaded(&previous, "reusing", &from, args.quiet);
            Some(Arc::new(previous))
        }
        Ok(None) => None,
        Err(message) => {
            // The run still computes everything: a damaged earlier file costs time only.
            say!("warning: job `{}`: {message}; every item runs", job.name);
            None
        }
    }
}

/// Says what was read to reuse (and what in it cannot be matched).
pub fn tell_loaded(previous: &Previous, verb: &str, path: &Path, quiet: bool) {
    if !quiet {
        let torn = match previous.torn_lines {
            0 => String::new(),
            n => format!(
                " ({n} unreadable journal line{} skipped: a killed run's last write)",
                plural(n as usize)
            ),
        };
        say!(
            "runjobs: {verb} from {}: {} finished result{} to reuse{torn}",
            previous.sources.join(" and "),
            previous.len(),
            plural(previous.len())
        );
    }
    if previous.unidentified > 0 {
        say!(
            "warning: {} result{} in `{}` name no `function_hash` (an older runjobs wrote \
             them) and cannot be matched: those items run again",
            previous.unidentified,
            plural(previous.unidentified as usize),
            path.display()
        );
    }
}

/// Warns when `previous` holds no result of any of the job's functions (another job's
/// file, or every function changed since): nothing will be reused.
pub fn tell_unmatched(previous: &Previous, job: &Job, hashes: &[String]) {
    if previous.len() > 0 && !hashes.iter().any(|h| previous.has_function(h)) {
        say!(
            "note: job `{}`: none of the {} results in {} are of this job's functions (another \
             job's results, or its functions changed since): nothing is reused",
            job.name,
            previous.len(),
            previous.sources.join(" and ")
        );
    }
}

/// What a task's items are checked against before they run.
pub struct Earlier<'a> {
    pub previous: Option<&'a Arc<Previous>>,
    pub function_hash: &'a str,
    pub file_state: Option<&'a FileStateRule>,
}

/// Wraps a task's items: the ones already done go straight to `events` as reused
/// results; the rest come out to be run. With files to fingerprint, also gives back where
/// their fingerprints wait for their results. Without anything to check, `items` is left
/// as it is (a `range` keeps its fast path).
pub fn skip_done(
    earlier: &Earlier<'_>,
    items: Source,
    events: SyncSender<Event>,
    task: usize,
) -> (Source, Option<Arc<Fingerprints>>) {
    if earlier.previous.is_none() && earlier.file_state.is_none() {
        return (items, None);
    }
    let fingerprints = earlier
        .file_state
        .map(|_| Arc::new(Fingerprints::default()));
    let source = Source::Items(Box::new(SkipDone {
        previous: earlier.previous.cloned(),
        function_hash: earlier.function_hash.to_owned(),
        file_state: earlier.file_state.cloned(),
        fingerprints: fingerprints.clone(),
        items,
        events,
        task,
        reused: Vec::new(),
    }));
    (source, fingerprints)
}

struct SkipDone {
    previous: Option<Arc<Previous>>,
    function_hash: String,
    file_state: Option<FileStateRule>,
    fingerprints: Option<Arc<Fingerprints>>,
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
            let Ok(value) = &input else {
                return Some((index, input));
            };
            let state = self
                .file_state
                .as_ref()
                .map(|r| fingerprint::read(r, value));
            let done = self.previous.as_ref().and_then(|previous| {
                previous.reuse(&self.function_hash, index, value, state.as_ref())
            });
            match done {
                Some(record) => {
                    self.reused.push(record);
                    if self.reused.len() >= BATCH {
                        self.send();
                    }
                }
                None => {
                    if let (Some(fingerprints), Some(now)) = (
                        &self.fingerprints,
                        state.as_ref().and_then(|s| s.fingerprint()),
                    ) {
                        fingerprints.note(index, Arc::clone(now));
                    }
                    return Some((index, input));
                }
            }
        }
    }
}
