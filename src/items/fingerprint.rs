//! The state of the file an input names (SPEC §8 "Runs over time"): read before the item
//! runs, compared with the state an earlier result was computed from, and kept in the new
//! result's record (`fingerprint`) so the next run can compare again.
//!
//! `mtime` is the file's size and modification time in nanoseconds (Nextflow's standard
//! cache: a touch reruns, a copy with `cp -p` of other bytes of the same size does not);
//! `content` is a SHA-256 of the bytes, read in blocks so a big file costs no memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::function_hash::hex;
use crate::job::{FileStateMode, FileStateRule};
use crate::record::{FileState, ItemRecord, Rendered};

/// Reads the state of the file `input` names, the way `rule` says.
pub fn read(rule: &FileStateRule, input: &Value) -> FileState {
    let Value::String(path) = input else {
        return FileState::NotAPath;
    };
    let path = rule.base.join(path);
    let Ok(meta) = std::fs::metadata(&path) else {
        return FileState::Unreadable;
    };
    let Ok(modified) = meta.modified() else {
        return FileState::Unreadable;
    };
    let fingerprint = match rule.mode {
        FileStateMode::Mtime => {
            let nanos = modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("mtime:{}:{nanos}", meta.len())
        }
        FileStateMode::Content => match sha256_file(&path) {
            Ok(hex) => format!("sha256:{hex}"),
            Err(_) => return FileState::Unreadable,
        },
    };
    FileState::Known {
        fingerprint: fingerprint.into(),
        modified,
    }
}

/// The SHA-256 of a file's bytes, in hex, read in 64 KiB blocks.
fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut block) {
            Ok(0) => break,
            Ok(n) => hasher.update(&block[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// The fingerprints of a task's items between being read and their results arriving: the
/// collector stamps each result with its item's (a builtin worker renders its records
/// without them, so those are parsed and stamped; only file-naming tasks pay that).
#[derive(Debug, Default)]
pub struct Fingerprints {
    pending: Mutex<HashMap<u64, Arc<str>>>,
}

impl Fingerprints {
    /// Item `index` is about to run on a file in this state.
    pub fn note(&self, index: u64, fingerprint: Arc<str>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(index, fingerprint);
    }

    /// `items`, noting the state of each one's file as it goes by to be run.
    pub fn noting<I>(
        self: &Arc<Self>,
        rule: FileStateRule,
        items: I,
    ) -> impl Iterator<Item = I::Item> + use<I>
    where
        I: Iterator<Item = (u64, Result<Value, String>)>,
    {
        let fingerprints = Arc::clone(self);
        items.inspect(move |(index, input)| {
            if let Ok(value) = input
                && let FileState::Known { fingerprint, .. } = read(&rule, value)
            {
                fingerprints.note(*index, fingerprint);
            }
        })
    }

    /// Gives each record its item's fingerprint (once: the item is then done).
    pub fn stamp(&self, records: &mut [ItemRecord]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for record in records {
            if let Some(fingerprint) = pending.remove(&record.index) {
                record.fingerprint = Some(fingerprint);
            }
        }
    }

    /// Records rendered by a worker, parsed and stamped.
    pub fn stamped(&self, rendered: &Rendered) -> Vec<ItemRecord> {
        let mut records = rendered.records();
        self.stamp(&mut records);
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(dir: &std::path::Path, mode: FileStateMode) -> FileStateRule {
        FileStateRule {
            mode,
            base: dir.to_path_buf(),
        }
    }

    #[test]
    fn mtime_follows_size_and_time_and_content_follows_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "abc").unwrap();
        let by_time = rule(dir.path(), FileStateMode::Mtime);
        let by_bytes = rule(dir.path(), FileStateMode::Content);
        let before = read(&by_time, &json!("a.txt"));
        let hash = read(&by_bytes, &json!("a.txt"));
        assert_eq!(
            hash.fingerprint().map(|f| &**f),
            Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(before.fingerprint().unwrap().starts_with("mtime:3:"));
        // The same bytes, a later modification time.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_ne!(read(&by_time, &json!("a.txt")), before);
        assert_eq!(
            read(&by_bytes, &json!("a.txt")).fingerprint(),
            hash.fingerprint()
        );
        assert_eq!(read(&by_time, &json!("gone.txt")), FileState::Unreadable);
        assert_eq!(read(&by_time, &json!(7)), FileState::NotAPath);
    }
}
