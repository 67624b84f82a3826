//! What the end-to-end tests of the binary share: running it, its output, a small data set,
//! and a snapshot of a folder to show that a failed command changed nothing.

#![allow(dead_code)] // each test binary uses its own part

use ferrograd_train::data::idx::encode_idx;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn ferrograd(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the ferrograd binary runs")
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Digits drawn as a bright vertical bar whose column encodes the label.
pub fn write_synthetic_mnist(dir: &Path, train: usize, test: usize) {
    for (images, labels, n) in [
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", train),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test),
    ] {
        let mut pixels = vec![0u8; n * 28 * 28];
        let labels_data: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        for (i, &label) in labels_data.iter().enumerate() {
            let col = 2 + 2 * label as usize;
            for row in 4..24 {
                pixels[i * 784 + row * 28 + col] = 255;
            }
        }
        std::fs::write(dir.join(images), encode_idx(&[n, 28, 28], &pixels)).unwrap();
        std::fs::write(dir.join(labels), encode_idx(&[n], &labels_data)).unwrap();
    }
}

/// Every file under `dir` with its contents.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}
