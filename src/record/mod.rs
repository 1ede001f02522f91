//! Records: the per-item result record and its rendered JSON lines, the run and task
//! headers, the results file formats, the journal, the identity of an item, reading earlier
//! results back for `--resume`, the live state of a run in progress, and where results go
//! when their folder fails. The lowest layer: the executor, the writers and the pipeline all
//! use it, and it imports none of them.

pub mod fallback;
mod format;
mod header;
mod identity;
mod item;
pub mod journal;
pub mod live;
pub mod ok_run;
pub mod own_file;
pub mod read;
pub mod resume;

pub use format::Format;
pub use header::{RunFooter, RunHeader, RunStatus, TaskFooter, TaskHeader, VERSION};
pub use identity::{FileState, ItemKey, item_key};
pub use item::{
    ItemRecord, JOURNAL_LINE_END, LINE_END, OkRecord, OkRecordWriter, Rendered, Status, Summary,
    Truncated,
};
pub use journal::{JournalHandle, JournalRange};
