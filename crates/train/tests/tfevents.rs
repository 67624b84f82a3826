//! The event file that `MetricsWriter` writes beside `metrics.csv`, read back by a parser written
//! here from the TFRecord and protobuf definitions (bitwise CRC-32C, not the writer's table), as
//! TensorBoard's reader would: every CRC checked, every field decoded.

use ferrograd_train::metrics::{MetricsRow, MetricsWriter};
use std::path::{Path, PathBuf};

fn crc32c_bitwise(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

fn masked(bytes: &[u8]) -> u32 {
    let c = crc32c_bitwise(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn records(file: &[u8]) -> Vec<Vec<u8>> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at < file.len() {
        let header = &file[at..at + 8];
        let len = u64::from_le_bytes(header.try_into().unwrap()) as usize;
        let u32_at = |i: usize| u32::from_le_bytes(file[i..i + 4].try_into().unwrap());
        assert_eq!(u32_at(at + 8), masked(header), "length CRC of the record at byte {at}");
        let data = &file[at + 12..at + 12 + len];
        assert_eq!(u32_at(at + 12 + len), masked(data), "data CRC of the record at byte {at}");
        out.push(data.to_vec());
        at += 16 + len;
    }
    out
}

#[derive(Debug, PartialEq)]
enum Field {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

fn varint(buf: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn fields(buf: &[u8]) -> Vec<(u64, Field)> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at < buf.len() {
        let key = varint(buf, &mut at);
        let field = match key & 7 {
            0 => Field::Varint(varint(buf, &mut at)),
            1 => Field::Fixed64(buf[at..at + 8].try_into().unwrap()),
            2 => {
                let len = varint(buf, &mut at) as usize;
                Field::Bytes(buf[at..at + len].to_vec())
            }
            5 => Field::Fixed32(buf[at..at + 4].try_into().unwrap()),
            wire => panic!("unexpected wire type {wire}"),
        };
        at += match &field {
            Field::Varint(_) => 0,
            Field::Fixed64(_) => 8,
            Field::Bytes(b) => b.len(),
            Field::Fixed32(_) => 4,
        };
        out.push((key >> 3, field));
    }
    out
}

/// An event: (wall time, step, file_version if any, scalars (tag, value)).
type Event = (f64, u64, Option<String>, Vec<(String, f32)>);

fn event(data: &[u8]) -> Event {
    let mut e = (0.0, 0, None, Vec::new());
    for (number, field) in fields(data) {
        match (number, field) {
            (1, Field::Fixed64(b)) => e.0 = f64::from_le_bytes(b),
            (2, Field::Varint(v)) => e.1 = v,
            (3, Field::Bytes(b)) => e.2 = Some(String::from_utf8(b).unwrap()),
            (5, Field::Bytes(summary)) => {
                for (n, value) in fields(&summary) {
                    let (1, Field::Bytes(value)) = (n, value) else { panic!("Summary field {n}") };
                    let mut tag_value = (String::new(), f32::NAN);
                    for (n, f) in fields(&value) {
                        match (n, f) {
                            (1, Field::Bytes(t)) => tag_value.0 = String::from_utf8(t).unwrap(),
                            (2, Field::Fixed32(v)) => tag_value.1 = f32::from_le_bytes(v),
                            other => panic!("Summary.Value field {other:?}"),
                        }
                    }
                    e.3.push(tag_value);
                }
            }
            other => panic!("Event field {other:?}"),
        }
    }
    e
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."))
        .collect();
    files.sort();
    files
}

fn row(epoch: usize, test: bool) -> MetricsRow {
    MetricsRow {
        epoch,
        step: epoch as u64 * 469,
        train_loss: 1.0 / epoch as f64,
        train_acc: Some(0.9),
        test_loss: test.then_some(0.25),
        test_acc: test.then_some(0.975),
        lr: 1e-3,
        throughput: 1500.0,
        seconds: 60.0 * epoch as f64,
    }
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(crc32c_bitwise(b"123456789"), 0xe306_9283);
    assert_eq!(ferrograd_train::tfevents::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn metrics_rows_and_step_scalars_read_back_as_tensorboard_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = MetricsWriter::create(&dir.path().join("metrics.csv")).unwrap();
    w.step_scalars(10, &[("train/step_loss", 2.5)]).unwrap();
    w.write(&row(1, true)).unwrap();
    w.write(&row(2, false)).unwrap();
    drop(w);
    let files = event_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let events: Vec<Event> = records(&std::fs::read(&files[0]).unwrap()).iter().map(|r| event(r)).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0].2.as_deref(), Some("brain.Event:2"));
    assert!(events.iter().all(|e| e.0 > 1.7e9), "wall times are seconds since 1970");
    assert_eq!((events[1].1, events[1].3.clone()), (10, vec![("train/step_loss".to_string(), 2.5)]));
    let tags = |e: &Event| e.3.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(events[2].1, 469);
    assert_eq!(
        tags(&events[2]),
        ["train/loss", "train/accuracy", "test/loss", "test/accuracy", "learning_rate", "throughput/per_sec"]
    );
    assert_eq!(events[2].3.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [1.0, 0.9, 0.25, 0.975, 1e-3, 1500.0]);
    assert_eq!(events[3].1, 938);
    assert_eq!(tags(&events[3]), ["train/loss", "train/accuracy", "learning_rate", "throughput/per_sec"]);
}

#[test]
fn a_resumed_run_rewrites_one_event_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("metrics.csv");
    let mut w = MetricsWriter::create(&csv).unwrap();
    for e in 1..=3 {
        w.write(&row(e, true)).unwrap();
    }
    drop(w);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a new file name (whole seconds)
    MetricsWriter::resume(&csv, 469).unwrap();
    let files = event_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let steps: Vec<u64> = records(&std::fs::read(&files[0]).unwrap()).iter().map(|r| event(r).1).collect();
    assert_eq!(steps, [0, 469], "the file-version event, then the kept row");
}
