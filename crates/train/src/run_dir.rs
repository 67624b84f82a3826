//! The run folder: what a run writes there, and the rules that keep an earlier run's data safe.
//! A folder that holds a run is continued (`resume`) or replaced (`overwrite`), never silently
//! emptied; temporary files that a killed checkpoint write left behind are removed at start.

use crate::error::{Result, TrainError};
use std::path::{Path, PathBuf};

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const METRICS_FILE: &str = "metrics.csv";
pub const SUMMARY_FILE: &str = "summary.json";
/// The files whose presence means a folder holds a run.
const RUN_FILES: [&str; 3] = [CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE];

/// What to do with a folder that already holds a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// refuse to start
    #[default]
    Refuse,
    /// continue it from its checkpoint
    Resume,
    /// start over, deleting its checkpoint, metrics and summary first
    Overwrite,
}

/// The run files present in `dir`.
pub fn run_files(dir: &Path) -> Vec<&'static str> {
    RUN_FILES.into_iter().filter(|f| dir.join(f).exists()).collect()
}

/// Makes `dir` ready for a run under `existing`; returns the stale temporary files removed.
pub fn prepare(dir: &Path, existing: Existing) -> Result<Vec<PathBuf>> {
    let found = run_files(dir);
    match existing {
        Existing::Refuse if !found.is_empty() => {
            return Err(TrainError::Config(format!(
                "{} already holds a run ({}); pass --resume to continue it or --overwrite to replace it",
                dir.display(),
                found.join(", ")
            )))
        }
        Existing::Resume if !dir.join(CHECKPOINT_FILE).is_file() => {
            return Err(TrainError::NotFound(format!(
                "--resume: no checkpoint at {}",
                dir.join(CHECKPOINT_FILE).display()
            )))
        }
        Existing::Overwrite => {
            for f in found {
                std::fs::remove_file(dir.join(f)).map_err(|e| TrainError::io(&dir.join(f), e))?;
            }
        }
        _ => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    remove_stale_temporaries(dir)
}

/// Whether `dir`, or a folder in it (one run of a comparison), holds a run.
pub fn holds_run(dir: &Path) -> bool {
    let in_subfolder = || {
        let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
        entries.filter(|e| e.path().is_dir()).any(|e| !run_files(&e.path()).is_empty())
    };
    !run_files(dir).is_empty() || in_subfolder()
}

/// `base` when it holds no run, else the first of `base-2`, `base-3`, ... that holds none.
pub fn fresh(base: &Path) -> PathBuf {
    let name = base.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    std::iter::once(base.to_path_buf())
        .chain((2..).map(|i| base.with_file_name(format!("{name}-{i}"))))
        .find(|d| !holds_run(d))
        .expect("an unbounded sequence of folders has a free one")
}

/// Removes `.NAME.tmp-PID` files (see [`crate::checkpoint::write_atomically`]) whose process
/// is gone: a write killed mid-way leaves a full-size one behind.
fn remove_stale_temporaries(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temporary_pid(&name) else { continue };
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        let path = entry.path();
        std::fs::remove_file(&path).map_err(|e| TrainError::io(&path, e))?;
        removed.push(path);
    }
    Ok(removed)
}

/// The writer's process id of a temporary file name `.NAME.tmp-PID`.
pub(crate) fn temporary_pid(name: &str) -> Option<u32> {
    let (head, pid) = name.rsplit_once(".tmp-")?;
    head.starts_with('.').then_some(())?;
    pid.parse().ok()
}

/// Whether a process `pid` is running (known on Linux; elsewhere every writer counts as gone).
fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(temporary_pid(".checkpoint.safetensors.tmp-4242"), Some(4242));
        assert_eq!(temporary_pid("checkpoint.safetensors.tmp-4242"), None);
        assert_eq!(temporary_pid(".metrics.csv.tmp-x"), None);
        assert_eq!(temporary_pid("checkpoint.safetensors"), None);
    }
}
