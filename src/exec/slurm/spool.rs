//! The spool folder of one task's submission, on storage the cluster's nodes share: what
//! runjobs writes before submitting (the manifest, a copy of the job file, the items, the
//! array task's script) and what each shard leaves (its journal, its log, its `done` mark).
//!
//! ```text
//! SPOOL/manifest.json     the task, its function's hash, the run's header and clock, the shards
//! SPOOL/job.toml          the job file as it was submitted
//! SPOOL/items.jsonl       `[index, input]` a line, in input order; shard k reads its byte range
//! SPOOL/shard.sh          what each array task runs
//! SPOOL/array-id          the Slurm job id, once submitted (for `scancel` by hand)
//! SPOOL/shard-K.journal   shard K's results, appended as they land (one writer a file: appends
//!                         from several nodes to one file over NFS are not safe)
//! SPOOL/shard-K.log       shard K's standard output and error (Slurm's `--output`)
//! SPOOL/shard-K.done      written by shard K once its journal holds all it will ever hold
//! ```

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::RunHeader;

/// Version of the spool layout: a shard refuses a spool of another version.
pub const LAYOUT: u32 = 1;

/// What every shard of a submission reads first.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub layout: u32,
    /// The job file as the user named it, absolute: relative paths in the copy resolve
    /// against its folder.
    pub job_file: PathBuf,
    pub task: usize,
    /// The hash the submitting runjobs computed; a shard whose own differs (a script edited
    /// since) runs nothing.
    pub function_hash: String,
    /// The run's header: each shard journal is a journal of the run that submitted it.
    pub header: RunHeader,
    /// When the run started, in nanoseconds since the Unix epoch: shards count `started_s`
    /// from it, so the merged timeline is the run's.
    pub run_started_unix_ns: u64,
    /// Worker processes in each shard.
    pub workers: usize,
    /// `--timeout` given to the submitting runjobs, which the job file copy does not hold.
    pub timeout_ms: Option<u64>,
    /// The admission bounds the submitting runjobs ran under (`[admit]`, `--memfree`,
    /// `--load`): each shard holds its items back by its own node's figures.
    #[serde(default)]
    pub memfree: Option<u64>,
    #[serde(default)]
    pub load: Option<f64>,
    pub shards: Vec<ShardRange>,
}

/// Where one shard's items are in `items.jsonl`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ShardRange {
    /// Byte offset and length of its lines.
    pub offset: u64,
    pub len: u64,
    /// How many items.
    pub count: u64,
}

/// The folder of one submission.
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
}

impl Spool {
    pub fn new(dir: PathBuf) -> Spool {
        Spool { dir }
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
    pub fn job_copy(&self) -> PathBuf {
        self.dir.join("job.toml")
    }
    pub fn items(&self) -> PathBuf {
        self.dir.join("items.jsonl")
    }
    pub fn script(&self) -> PathBuf {
        self.dir.join("shard.sh")
    }
    pub fn array_id(&self) -> PathBuf {
        self.dir.join("array-id")
    }
    pub fn journal(&self, shard: usize) -> PathBuf {
        self.dir.join(format!("shard-{shard}.journal"))
    }
    /// Slurm's `--output` pattern for the array tasks' logs (`%a` is the array index).
    pub fn log_pattern(&self) -> PathBuf {
        self.dir.join("shard-%a.log")
    }
    pub fn log(&self, shard: usize) -> PathBuf {
        self.dir.join(format!("shard-{shard}.log"))
    }
    pub fn done(&self, shard: usize) -> PathBuf {
        self.dir.join(format!("shard-{shard}.done"))
    }

    pub fn write_manifest(&self, manifest: &Manifest) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
        write_whole(&self.manifest(), &text)
    }

    pub fn read_manifest(&self) -> Result<Manifest, String> {
        let path = self.manifest();
        let text = fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| format!("`{}` is not a runjobs spool manifest: {e}", path.display()))?;
        if manifest.layout != LAYOUT {
            return Err(format!(
                "`{}` was written by another runjobs (spool layout {}, this one reads {LAYOUT})",
                path.display(),
                manifest.layout
            ));
        }
        Ok(manifest)
    }

    /// The `[index, input]` items of one shard, streamed from its byte range.
    pub fn shard_items(
        &self,
        range: ShardRange,
    ) -> io::Result<impl Iterator<Item = (u64, Result<Value, String>)> + Send + use<>> {
        let mut file = File::open(self.items())?;
        file.seek(SeekFrom::Start(range.offset))?;
        let lines = BufReader::new(file.take(range.len)).lines();
        Ok(lines.enumerate().map(|(n, line)| {
            let parsed = line
                .map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str::<(u64, Value)>(&l).map_err(|e| e.to_string()));
            match parsed {
                Ok((index, input)) => (index, Ok(input)),
                // The line's own index is unknown: its place in the shard stands in.
                Err(e) => (n as u64, Err(format!("cannot read the spooled item: {e}"))),
            }
        }))
    }
}

/// Writes the items as `[index, input]` lines, split into `shards` runs of consecutive items
/// (in input order), and returns each run's byte range.
pub struct ItemsWriter {
    out: BufWriter<File>,
    written: u64,
    /// The byte offset where each item's line starts.
    starts: Vec<u64>,
    line: Vec<u8>,
}

impl ItemsWriter {
    pub fn create(path: &Path) -> io::Result<ItemsWriter> {
        Ok(ItemsWriter {
            out: BufWriter::with_capacity(1 << 16, create(path)?),
            written: 0,
            starts: Vec::new(),
            line: Vec::new(),
        })
    }

    pub fn push(&mut self, index: u64, input: &Value) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, &(index, input)).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.starts.push(self.written);
        self.written += self.line.len() as u64;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.starts.len() as u64
    }

    /// Flushes the file and splits the items into `shards` runs as even as can be.
    pub fn finish(mut self, shards: usize) -> io::Result<Vec<ShardRange>> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        let n = self.starts.len();
        let shards = shards.clamp(1, n.max(1));
        let mut ranges = Vec::with_capacity(shards);
        for k in 0..shards {
            let (first, end) = (k * n / shards, (k + 1) * n / shards);
            let offset = self.starts.get(first).copied().unwrap_or(self.written);
            let until = self.starts.get(end).copied().unwrap_or(self.written);
            ranges.push(ShardRange {
                offset,
                len: until - offset,
                count: (end - first) as u64,
            });
        }
        Ok(ranges)
    }
}

/// Writes a small file whole and forces it to disk (another node reads it next).
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates (or empties) a spool file, never through a symlink planted at its path: the
/// spool is on shared storage, and a link there must not make runjobs overwrite the file it
/// points to (see `record::own_file`).
fn create(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_spool_file_is_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("manifest.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_whole(&link, b"{}").is_err());
        assert!(ItemsWriter::create(&link).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let plain = dir.path().join("job.json");
        write_whole(&plain, b"{}").unwrap();
        write_whole(&plain, b"[]").unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "[]");
    }

    #[test]
    fn items_split_into_even_runs_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_owned());
        let mut writer = ItemsWriter::create(&spool.items()).unwrap();
        for i in 0..10u64 {
            writer.push(i * 2, &json!({"n": i})).unwrap();
        }
        let ranges = writer.finish(3).unwrap();
        assert_eq!(
            ranges.iter().map(|r| r.count).collect::<Vec<_>>(),
            [3, 3, 4]
        );
        let mut seen = Vec::new();
        for range in ranges {
            for (index, input) in spool.shard_items(range).unwrap() {
                seen.push((index, input.unwrap()["n"].as_u64().unwrap()));
            }
        }
        assert_eq!(seen, (0..10).map(|i| (i * 2, i)).collect::<Vec<_>>());
    }

    #[test]
    fn fewer_items_than_shards_make_one_shard_an_item() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ItemsWriter::create(&dir.path().join("items.jsonl")).unwrap();
        writer.push(0, &json!(1)).unwrap();
        writer.push(1, &json!(2)).unwrap();
        let ranges = writer.finish(8).unwrap();
        assert_eq!(ranges.len(), 2);
        assert!(ranges.iter().all(|r| r.count == 1));
    }
}
