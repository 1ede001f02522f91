//! Where the stdout of a one-liner's items goes while they run (`runjobs exec`): a relay
//! that prints it in input order. A seam only: the pool hands it bytes, the pipeline tells it
//! which items are done; what it prints, and where, is the relay's.

use serde_json::Value;

/// Takes each item's stdout as its processes write it, and each item's conclusion.
pub trait ItemStdout: Sync {
    /// An attempt at item `index` (with `input`) starts: what an earlier attempt of the item
    /// wrote is dropped.
    fn attempt(&self, index: u64, input: &Value);
    /// Bytes the current attempt at item `index` wrote to its stdout.
    fn write(&self, index: u64, bytes: &[u8]);
    /// `--tag`'s prefix for a line an item with `input` writes (to stdout or stderr).
    fn tag(&self, input: &Value) -> String;
    /// Item `index` is done (its record reached the pipeline). `input` and `output` are the
    /// record's (its output when it is text), for an item no attempt of which ran here
    /// (reused, or run on another machine).
    fn concluded(&self, index: u64, input: Option<&Value>, output: Option<&str>);
    /// Nobody reads the outputs any more (a closed pipe): the run should stop.
    fn closed(&self) -> bool;
}
