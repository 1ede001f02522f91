//! Bytes held back for printing later, under one memory budget for all of them: past it,
//! they go to an unnamed temporary file (gone when closed, even after a SIGKILL) and are read
//! back when their turn comes. The file is emptied whenever nothing in it is still wanted.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// What one item holds back, in order.
#[derive(Debug, Default)]
pub struct Held {
    chunks: Vec<Chunk>,
}

#[derive(Debug)]
enum Chunk {
    Memory(Vec<u8>),
    /// `len` bytes at `at` in the spill file.
    Disk {
        at: u64,
        len: u64,
    },
}

/// The budget and the spill file shared by every item's `Held` bytes.
#[derive(Debug)]
pub struct Spill {
    budget: usize,
    /// Bytes held in memory now.
    in_memory: usize,
    file: Option<File>,
    /// Where the next spilled bytes go.
    end: u64,
    /// Spilled bytes still held by some item.
    on_disk: u64,
}

impl Spill {
    pub fn new(budget: usize) -> Spill {
        Spill {
            budget,
            in_memory: 0,
            file: None,
            end: 0,
            on_disk: 0,
        }
    }

    /// Holds `bytes` back for `held`: in memory while the budget allows, else on disk.
    pub fn hold(&mut self, held: &mut Held, bytes: &[u8]) -> io::Result<()> {
        if self.in_memory + bytes.len() <= self.budget {
            self.in_memory += bytes.len();
            if let Some(Chunk::Memory(last)) = held.chunks.last_mut() {
                last.extend_from_slice(bytes);
            } else {
                held.chunks.push(Chunk::Memory(bytes.to_vec()));
            }
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            empty => empty.insert(tempfile::tempfile().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create a temporary file for held-back output: {e}"),
                )
            })?),
        };
        file.write_all_at(bytes, self.end)?;
        let len = bytes.len() as u64;
        match held.chunks.last_mut() {
            Some(Chunk::Disk { at, len: last }) if *at + *last == self.end => *last += len,
            _ => held.chunks.push(Chunk::Disk { at: self.end, len }),
        }
        self.end += len;
        self.on_disk += len;
        Ok(())
    }

    /// Writes what `held` holds to `out`, in order, and lets it go.
    pub fn write_out(&mut self, held: Held, out: &mut dyn Write) -> io::Result<()> {
        let mut result = Ok(());
        let mut buf = Vec::new();
        for chunk in held.chunks {
            match chunk {
                Chunk::Memory(bytes) => {
                    self.in_memory -= bytes.len();
                    if result.is_ok() {
                        result = out.write_all(&bytes);
                    }
                }
                Chunk::Disk { at, len } => {
                    if result.is_ok() {
                        result = self.copy(at, len, &mut buf, out);
                    }
                    self.released(len);
                }
            }
        }
        result
    }

    /// Lets what `held` holds go unwritten (an attempt that is retried).
    pub fn drop_held(&mut self, held: Held) {
        for chunk in held.chunks {
            match chunk {
                Chunk::Memory(bytes) => self.in_memory -= bytes.len(),
                Chunk::Disk { len, .. } => self.released(len),
            }
        }
    }

    fn copy(&self, at: u64, len: u64, buf: &mut Vec<u8>, out: &mut dyn Write) -> io::Result<()> {
        let file = self.file.as_ref().expect("spilled bytes have a file");
        buf.resize(64 * 1024, 0);
        let mut done = 0;
        while done < len {
            let n = buf.len().min((len - done) as usize);
            file.read_exact_at(&mut buf[..n], at + done)?;
            out.write_all(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    fn released(&mut self, len: u64) {
        self.on_disk -= len;
        if self.on_disk == 0 && self.end > 0 {
            // Nothing in the file is wanted any more: start it again from empty.
            if let Some(file) = &self.file {
                let _ = file.set_len(0);
            }
            self.end = 0;
        }
    }

    /// Bytes held in memory now.
    #[cfg(test)]
    pub fn in_memory(&self) -> usize {
        self.in_memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_bytes_go_to_disk_and_come_back_in_order() {
        let mut spill = Spill::new(10);
        let (mut a, mut b) = (Held::default(), Held::default());
        spill.hold(&mut a, b"0123456").unwrap();
        spill.hold(&mut b, b"abcdef").unwrap();
        spill.hold(&mut a, b"789").unwrap();
        spill.hold(&mut a, b"XYZ").unwrap();
        assert_eq!(spill.in_memory(), 10);
        let mut out = Vec::new();
        spill.write_out(a, &mut out).unwrap();
        assert_eq!(out, b"0123456789XYZ");
        assert_eq!(spill.in_memory(), 0);
        spill.drop_held(b);
        assert_eq!((spill.on_disk, spill.end), (0, 0), "the file starts again");
    }
}
