//! File builtins, streamed in chunks: `sha256_file`, `line_count`, `word_count`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Options;
use super::values::*;

pub(super) fn sha256_file(v: &Value, _: &Options) -> Result<Value, String> {
    let mut hasher = Sha256::new();
    for_each_chunk("sha256_file", v, |chunk| hasher.update(chunk))?;
    Ok(Value::String(hex(&hasher.finalize())))
}

pub(super) fn line_count(v: &Value, _: &Options) -> Result<Value, String> {
    let mut lines = 0u64;
    let mut last = None;
    for_each_chunk("line_count", v, |chunk| {
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk.last().copied().or(last);
    })?;
    // A non-empty last line without '\n' still counts.
    if last.is_some_and(|b| b != b'\n') {
        lines += 1;
    }
    Ok(Value::from(lines))
}

pub(super) fn word_count(v: &Value, _: &Options) -> Result<Value, String> {
    let mut counter = WordCounter::default();
    for_each_chunk("word_count", v, |chunk| counter.feed(chunk))?;
    Ok(Value::from(counter.finish()))
}

/// Counts words separated by Unicode whitespace in a byte stream. Invalid UTF-8 counts
/// as word characters (like `wc`); a character split across chunks is carried over.
#[derive(Default)]
pub(super) struct WordCounter {
    pending: Vec<u8>,
    in_word: bool,
    words: u64,
}

impl WordCounter {
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        let complete = complete_prefix_len(&self.pending);
        let pending = std::mem::take(&mut self.pending);
        let (now, later) = pending.split_at(complete);
        self.scan(now);
        self.pending = later.to_vec();
    }

    pub(super) fn finish(mut self) -> u64 {
        let rest = std::mem::take(&mut self.pending);
        self.scan(&rest);
        self.words
    }

    fn scan(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                self.step(c.is_whitespace());
            }
            if !chunk.invalid().is_empty() {
                self.step(false);
            }
        }
    }

    fn step(&mut self, whitespace: bool) {
        if whitespace {
            self.in_word = false;
        } else if !self.in_word {
            self.in_word = true;
            self.words += 1;
        }
    }
}

/// Length of `bytes` without a UTF-8 sequence that is cut off at the end (which the next
/// chunk completes).
pub(super) fn complete_prefix_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let i = len - back;
        let b = bytes.get(i).copied().unwrap_or(0);
        if b & 0xC0 != 0x80 {
            // A lead byte (or ASCII): how long is its sequence?
            let need = match b {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            return if need > back { i } else { len };
        }
    }
    len
}
