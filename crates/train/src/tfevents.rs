//! TensorBoard event files (`events.out.tfevents.*`) holding scalars, written from the format's
//! definition instead of a crate (the one on crates.io pulls in a protobuf stack for a few
//! bytes). A file is a sequence of TFRecords:
//! `u64 length, u32 masked_crc32c(length), data, u32 masked_crc32c(data)` (little-endian),
//! each `data` an `Event` protobuf: `wall_time` (1, double), `step` (2, int64), and either
//! `file_version` (3, string, the first record) or `summary` (5), whose `Summary.value` (1)
//! entries carry `tag` (1, string) and `simple_value` (2, float).

use crate::error::{Result, TrainError};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What TensorBoard looks for in a file name (`events.out.tfevents.TIME.HOST`).
pub const FILE_MARKER: &str = "tfevents";

const CASTAGNOLI_REFLECTED: u32 = 0x82f6_3b78;

/// CRC-32C (Castagnoli), as TFRecord uses it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ CASTAGNOLI_REFLECTED } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

/// TFRecord's masked CRC (a CRC of data that holds CRCs is then less likely to collide).
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn event(wall_time: f64, step: u64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = vec![1 << 3 | 1];
    e.extend_from_slice(&wall_time.to_le_bytes());
    varint(&mut e, 2 << 3);
    varint(&mut e, step);
    body(&mut e);
    e
}

fn scalar_value(tag: &str, value: f32) -> Vec<u8> {
    let mut v = Vec::new();
    bytes_field(&mut v, 1, tag.as_bytes());
    v.push(2 << 3 | 5);
    v.extend_from_slice(&value.to_le_bytes());
    v
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Starts a new event file in `dir`, first removing the event files already there: the
    /// caller rewrites the whole history (as `metrics.csv` is), and TensorBoard would otherwise
    /// show every point twice.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("events.out.tfevents.") {
                std::fs::remove_file(entry.path()).map_err(|e| TrainError::io(&entry.path(), e))?;
            }
        }
        let wall = now();
        let path = dir.join(format!("events.out.{FILE_MARKER}.{}.ferrograd", wall as u64));
        let file = File::create(&path).map_err(|e| TrainError::io(&path, e))?;
        let mut writer = EventWriter { path, file };
        writer.record(&event(wall, 0, |e| bytes_field(e, 3, b"brain.Event:2")))?;
        Ok(writer)
    }

    /// Appends one event holding `scalars` (tag, value) at `step` and flushes it; non-finite
    /// values are written as they are (TensorBoard shows them).
    pub fn scalars(&mut self, step: u64, scalars: &[(&str, f64)]) -> Result<()> {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            bytes_field(&mut summary, 1, &scalar_value(tag, *value as f32));
        }
        self.record(&event(now(), step, |e| bytes_field(e, 5, &summary)))
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        rec.extend_from_slice(data);
        rec.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.file.write_all(&rec).and_then(|_| self.file.flush()).map_err(|e| TrainError::io(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
