//! `summary.json`: what a finished (or stopped) run achieved, for people and scripts.

use crate::checkpoint::write_atomically;
use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub dataset: String,
    /// the adapter's name, or "cpu"
    pub device: String,
    /// epochs completed
    pub epochs: usize,
    /// written as `null` when it is NaN, read back as NaN
    #[serde(deserialize_with = "nan_if_null")]
    pub final_train_loss: f64,
    /// the last evaluation's loss (nats per character for a character LM)
    #[serde(default)]
    pub test_loss: Option<f64>,
    /// fraction in [0, 1]; `None` when no test pass ran
    pub test_accuracy: Option<f64>,
    pub wall_seconds: f64,
    /// training throughput in `throughput_unit`
    pub throughput: f64,
    /// "images/s", "characters/s" or "sequences/s"
    pub throughput_unit: String,
    /// why the run ended early (e.g. a NaN loss); `None` when it ran to the end
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Summary {
    /// Writes pretty-printed JSON atomically. Non-finite numbers (a NaN loss) become `null`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| TrainError::format(path, format!("cannot encode summary: {e}")))?;
        write_atomically(path, format!("{json}\n").as_bytes())
    }

    pub fn read(path: &Path) -> Result<Summary> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::format(path, format!("not a summary: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            model: "lenet5".into(),
            dataset: "mnist".into(),
            device: "llvmpipe (LLVM 19.1.7, 256 bits)".into(),
            epochs: 10,
            final_train_loss: 0.0213,
            test_loss: Some(0.031),
            test_accuracy: Some(0.9912),
            wall_seconds: 321.5,
            throughput: 1866.4,
            throughput_unit: "images/s".into(),
            stopped: None,
        }
    }

    #[test]
    fn writes_the_agreed_fields_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        summary().write(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for key in [
            "model",
            "dataset",
            "device",
            "epochs",
            "final_train_loss",
            "test_loss",
            "test_accuracy",
            "wall_seconds",
            "throughput",
            "throughput_unit",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v.get("stopped").is_none());
        assert_eq!(v["test_accuracy"], 0.9912);
        assert_eq!(Summary::read(&path).unwrap(), summary());
    }

    #[test]
    fn a_nan_loss_is_written_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let s = Summary { final_train_loss: f64::NAN, stopped: Some("loss became NaN at step 12".into()), ..summary() };
        s.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"final_train_loss\": null") && text.contains("NaN at step 12"), "{text}");
        assert!(Summary::read(&path).unwrap().final_train_loss.is_nan());
        std::fs::write(&path, "{}").unwrap();
        assert!(Summary::read(&path).unwrap_err().to_string().contains("s.json"));
    }
}
