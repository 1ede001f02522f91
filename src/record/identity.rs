//! What makes two items "the same work", for `--resume`: a hash of (the function's hash, the
//! input in canonical JSON). Positions play no part, so inserting, reordering or appending
//! inputs never mislabels finished work.
//!
//! SHA-256 (truncated to 128 bits), so it is stable across runs, machines and runjobs
//! versions that keep this encoding.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The identity of one item: its function's hash and its input in canonical JSON (object
/// keys sorted, so `{a, b}` and `{b, a}` are one input).
pub fn item_key(function_hash: &str, input: &Value) -> ItemKey {
    let mut text = String::with_capacity(64);
    write_canonical(&mut text, input);
    let mut h = Sha256::new();
    h.update(function_hash.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    ItemKey(u128::from_be_bytes(key))
}

/// What an input says about a file, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// The input is not a path (not a string): its identity is its value alone.
    NotAPath,
    /// The file it names cannot be read now: nothing computed from it can stand in.
    Unreadable,
    Known {
        fingerprint: Arc<str>,
        /// For results written before fingerprints were kept: they stand in only if the
        /// file was last changed before their run started (make's rule).
        modified: SystemTime,
    },
}

impl FileState {
    /// The fingerprint a result computed now would carry.
    pub fn fingerprint(&self) -> Option<&Arc<str>> {
        match self {
            FileState::Known { fingerprint, .. } => Some(fingerprint),
            _ => None,
        }
    }
}

/// See [`item_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey(u128);

/// Compact JSON with object keys sorted (the run preserves key order, identity must not).
fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(out, value);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_but_values_and_functions_do() {
        let f = "0123";
        assert_eq!(
            item_key(f, &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]})),
            item_key(f, &json!({"b": [1, {"x": 1, "y": 2}], "a": 1}))
        );
        assert_ne!(item_key(f, &json!(1)), item_key(f, &json!(2)));
        assert_ne!(item_key(f, &json!(1)), item_key(f, &json!("1")));
        assert_ne!(item_key(f, &json!(1)), item_key("0124", &json!(1)));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let mut text = String::new();
        write_canonical(
            &mut text,
            &json!({"b": {"d": 1, "c": "x\"y"}, "a": [null, true]}),
        );
        assert_eq!(text, r#"{"a":[null,true],"b":{"c":"x\"y","d":1}}"#);
    }
}
