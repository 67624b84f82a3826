//! The metrics CSV: one row per evaluation point (usually an epoch), flushed as it is written
//! so a crashed run keeps its history. Empty cells mean "not measured" (e.g. no test pass).
//! Each row also goes, as TensorBoard scalars, to an event file next to the CSV.

use crate::error::{Result, TrainError};
use crate::tfevents::EventWriter;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CSV_HEADER: &str = "epoch,step,train_loss,train_acc,test_loss,test_acc,lr,throughput,seconds";

/// Accuracies are fractions in [0, 1]; `throughput` counts what the task trains on (images,
/// characters, sequences) per second; `seconds` is wall time since the run started.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MetricsRow {
    pub epoch: usize,
    pub step: u64,
    pub train_loss: f64,
    pub train_acc: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_acc: Option<f64>,
    pub lr: f64,
    pub throughput: f64,
    pub seconds: f64,
}

impl MetricsRow {
    fn to_csv(&self) -> String {
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.epoch,
            self.step,
            self.train_loss,
            opt(self.train_acc),
            opt(self.test_loss),
            opt(self.test_acc),
            self.lr,
            self.throughput,
            self.seconds
        )
    }

    fn from_csv(path: &Path, line_no: usize, line: &str) -> Result<MetricsRow> {
        let bad = |what: &str| TrainError::format(path, format!("line {line_no}: {what}: {line:?}"));
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 9 {
            return Err(bad(&format!("{} cells, expected 9", cells.len())));
        }
        let num =
            |i: usize| cells[i].trim().parse::<f64>().map_err(|_| bad(&format!("cell {} is not a number", i + 1)));
        let opt = |i: usize| if cells[i].trim().is_empty() { Ok(None) } else { num(i).map(Some) };
        let int =
            |i: usize| cells[i].trim().parse::<u64>().map_err(|_| bad(&format!("cell {} is not an integer", i + 1)));
        Ok(MetricsRow {
            epoch: int(0)? as usize,
            step: int(1)?,
            train_loss: num(2)?,
            train_acc: opt(3)?,
            test_loss: opt(4)?,
            test_acc: opt(5)?,
            lr: num(6)?,
            throughput: num(7)?,
            seconds: num(8)?,
        })
    }

    /// The row as TensorBoard scalars (tag, value), leaving out what was not measured.
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        let measured = [
            ("train/loss", Some(self.train_loss)),
            ("train/accuracy", self.train_acc),
            ("test/loss", self.test_loss),
            ("test/accuracy", self.test_acc),
            ("learning_rate", Some(self.lr)),
            ("throughput/per_sec", Some(self.throughput)),
        ];
        measured.into_iter().filter_map(|(tag, v)| v.map(|v| (tag, v))).collect()
    }
}

/// Reads every row of a metrics CSV.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    parse_metrics(path, &text)
}

/// The rows of `text`, the contents of the `metrics.csv` at `path`.
pub fn parse_metrics(path: &Path, text: &str) -> Result<Vec<MetricsRow>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            if line.trim() != CSV_HEADER {
                return Err(TrainError::format(path, format!("header {line:?}, expected {CSV_HEADER:?}")));
            }
        } else if !line.trim().is_empty() {
            rows.push(MetricsRow::from_csv(path, i + 1, line)?);
        }
    }
    Ok(rows)
}

pub struct MetricsWriter {
    path: PathBuf,
    file: File,
    events: EventWriter,
}

impl MetricsWriter {
    /// Starts a new CSV at `path` (replacing any old one), and a new event file beside it
    /// (replacing the old ones there).
    pub fn create(path: &Path) -> Result<MetricsWriter> {
        let mut file = File::create(path).map_err(|e| TrainError::io(path, e))?;
        writeln!(file, "{CSV_HEADER}").map_err(|e| TrainError::io(path, e))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let events = EventWriter::create(dir)?;
        Ok(MetricsWriter { path: path.to_path_buf(), file, events })
    }

    /// Continues the CSV of a resumed run: keeps the rows up to and including `step` (later ones
    /// belong to work the checkpoint does not have) and appends after them. A missing file
    /// starts a new CSV.
    pub fn resume(path: &Path, step: u64) -> Result<MetricsWriter> {
        if !path.exists() {
            return MetricsWriter::create(path);
        }
        let rows: Vec<MetricsRow> = read_metrics(path)?.into_iter().filter(|r| r.step <= step).collect();
        let mut writer = MetricsWriter::create(path)?;
        for row in &rows {
            writer.write(row)?;
        }
        Ok(writer)
    }

    /// Appends a row and flushes it to the CSV and the event file.
    pub fn write(&mut self, row: &MetricsRow) -> Result<()> {
        writeln!(self.file, "{}", row.to_csv())
            .and_then(|_| self.file.flush())
            .map_err(|e| TrainError::io(&self.path, e))?;
        self.events.scalars(row.step, &row.scalars())
    }

    /// Records scalars between rows (e.g. the training loss of each step) in the event file only.
    pub fn step_scalars(&mut self, step: u64, scalars: &[(&str, f64)]) -> Result<()> {
        self.events.scalars(step, scalars)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, test: bool) -> MetricsRow {
        MetricsRow {
            epoch,
            step: epoch as u64 * 100,
            train_loss: 2.0 / (epoch as f64 + 1.0),
            train_acc: Some(0.5 + epoch as f64 * 0.01),
            test_loss: test.then_some(0.123456789),
            test_acc: test.then_some(0.987),
            lr: 1e-3,
            throughput: 1234.5,
            seconds: 10.25 * epoch as f64,
        }
    }

    #[test]
    fn rows_round_trip_with_empty_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let rows = vec![row(1, true), row(2, false), row(3, true)];
        let mut w = MetricsWriter::create(&path).unwrap();
        for r in &rows {
            w.write(r).unwrap();
        }
        assert_eq!(read_metrics(&path).unwrap(), rows);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(CSV_HEADER));
        assert_eq!(text.lines().nth(2), Some("2,200,0.6666666666666666,0.52,,,0.001,1234.5,20.5"));
    }

    #[test]
    fn resume_drops_rows_past_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let mut w = MetricsWriter::create(&path).unwrap();
        for e in 1..=4 {
            w.write(&row(e, true)).unwrap();
        }
        drop(w);
        let mut w = MetricsWriter::resume(&path, 200).unwrap();
        w.write(&row(3, false)).unwrap();
        let rows = read_metrics(&path).unwrap();
        assert_eq!(rows, vec![row(1, true), row(2, true), row(3, false)]);
        let fresh = dir.path().join("new.csv");
        MetricsWriter::resume(&fresh, 5).unwrap();
        assert!(read_metrics(&fresh).unwrap().is_empty());
    }

    #[test]
    fn malformed_csv_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, format!("{CSV_HEADER}\n1,10,0.5,,,,0.1,5,1\n2,x,0.5,,,,0.1,5,1\n")).unwrap();
        let err = read_metrics(&path).unwrap_err().to_string();
        assert!(err.contains("bad.csv") && err.contains("line 3") && err.contains("cell 2"), "{err}");
        std::fs::write(&path, "a,b\n").unwrap();
        assert!(read_metrics(&path).unwrap_err().to_string().contains("header"));
    }
}
