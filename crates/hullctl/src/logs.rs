//! The container log: one JSON object per line, as Docker's json-file
//! driver writes it: `{"log":"text\n","stream":"stdout","time":"..."}`.
//! Each read becomes records at once (a partial line is a record of its
//! own), so nothing read is held back if the monitor dies.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct Writer {
    file: File,
    /// Per stream, the start of a UTF-8 character cut by the last read.
    held: Vec<(String, Vec<u8>)>,
}

impl Writer {
    pub fn open(path: &Path) -> Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        Ok(Writer {
            file,
            held: Vec::new(),
        })
    }

    /// Writes `data` as records, one per line (the rest as a partial one).
    pub fn write(&mut self, stream: &str, data: &[u8]) {
        let slot = match self.held.iter().position(|(s, _)| s == stream) {
            Some(i) => i,
            None => {
                self.held.push((stream.to_string(), Vec::new()));
                self.held.len() - 1
            }
        };
        let mut bytes = std::mem::take(&mut self.held[slot].1);
        bytes.extend_from_slice(data);
        // A character cut at the end of this read waits for the next one.
        if let Err(e) = std::str::from_utf8(&bytes) {
            if e.error_len().is_none() {
                self.held[slot].1 = bytes.split_off(e.valid_up_to());
            }
        }
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        let time = libcontainer::time::now_rfc3339(true);
        let mut out = Vec::new();
        for piece in text.split_inclusive('\n') {
            let r = Record {
                log: piece.to_string(),
                stream: stream.to_string(),
                time: time.clone(),
            };
            serde_json::to_writer(&mut out, &r).expect("record serialises");
            out.push(b'\n');
        }
        // One write(2) with O_APPEND: whole records even if two writers race.
        let _ = self.file.write_all(&out);
    }
}

/// Reads the records of `path`, from `pos`; returns them and the offset
/// after the last whole line.
pub fn read_from(path: &Path, pos: u64) -> Result<(Vec<Record>, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), pos)),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    f.seek(SeekFrom::Start(pos))?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut off = pos;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        off += n as u64;
        if let Ok(rec) = serde_json::from_str::<Record>(&line) {
            out.push(rec);
        }
    }
    Ok((out, off))
}

fn print(records: &[Record], timestamps: bool) {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for r in records {
        let text = if timestamps {
            format!("{} {}", r.time, r.log)
        } else {
            r.log.clone()
        };
        let _ = if r.stream == "stderr" {
            stderr.write_all(text.as_bytes())
        } else {
            stdout.write_all(text.as_bytes())
        };
    }
    let _ = stdout.flush();
}

/// Prints the log; with `follow`, keeps printing until `running` says no
/// (and then what came last).
pub fn show(
    path: &Path,
    timestamps: bool,
    follow: bool,
    tail: Option<usize>,
    running: impl Fn() -> bool,
) -> Result<()> {
    let (recs, mut pos) = read_from(path, 0)?;
    let skip = tail.map_or(0, |n| recs.len().saturating_sub(n));
    print(&recs[skip..], timestamps);
    if !follow {
        return Ok(());
    }
    loop {
        let live = running();
        let (recs, next) = read_from(path, pos)?;
        print(&recs, timestamps);
        pos = next;
        if !live {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_between_reads_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = Writer::open(&p).unwrap();
        let text = "héllo €\n".as_bytes();
        w.write("stdout", &text[..2]); // "h" and half of "é"
        w.write("stdout", &text[2..9]); // cuts "€"
        w.write("stdout", &text[9..]);
        let (recs, _) = read_from(&p, 0).unwrap();
        let all: String = recs.iter().map(|r| r.log.as_str()).collect();
        assert_eq!(all, "héllo €\n");
    }

    #[test]
    fn records_round_trip_with_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = Writer::open(&p).unwrap();
        w.write("stdout", b"one\ntwo\nthr");
        w.write("stderr", b"oops\n");
        w.write("stdout", b"ee\n");
        let (recs, off) = read_from(&p, 0).unwrap();
        let logs: Vec<&str> = recs.iter().map(|r| r.log.as_str()).collect();
        assert_eq!(logs, ["one\n", "two\n", "thr", "oops\n", "ee\n"]);
        assert_eq!(recs[3].stream, "stderr");
        assert!(recs[0].time.ends_with('Z'));
        let (more, off2) = read_from(&p, off).unwrap();
        assert!(more.is_empty());
        assert_eq!(off, off2);
    }
}
