//! Inputs → items: a task's `inputs` expanded lazily into positioned values, the source the
//! executor takes them from, and the function half of an item's identity.

pub mod expand;
pub mod fingerprint;
mod function_hash;
mod source;

pub use function_hash::function_hash;
pub use source::{IntRun, Source};
