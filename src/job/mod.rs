//! Job files: loading, schema and semantic validation, and the resolved `Job` the rest of
//! runjobs runs. Knows nothing about processes.

mod diag;
mod load;
mod model;
mod outline;
mod resolve;
mod resolved;
mod schema;
mod span;

#[allow(
    unused_imports,
    reason = "public API; the binary only prints the errors"
)]
pub use diag::{Diagnostic, JobFileErrors, Snippet, did_you_mean};
pub(crate) use load::load_bytes;
pub use load::{load, load_all};
pub use outline::{Outline, outline};
pub use resolve::{memfree_problem, output_placeholder_problems, writable};
pub use resolved::*;
pub use schema::memory_limit;
pub use schema::schema_text;
