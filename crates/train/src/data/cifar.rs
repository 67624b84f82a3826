//! CIFAR-10, from the official binary batches (`data_batch_1..5.bin`, `test_batch.bin`: records
//! of 1 label byte + 3072 pixel bytes, the R, G and B planes of a 32x32 image) or from an
//! image folder `{train,test}/<class>/*.jpg|png` (the shared JPEG copy unpacks to `cifar10-jpg/`).

use super::image_folder::{self, ImageFolderOptions};
use super::read::read_maybe_gz;
use super::{ImageDataset, LoadOptions, Normalization, Split};
use crate::error::{Result, TrainError};
use std::path::{Path, PathBuf};

pub const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const RECORD: usize = 1 + PIXELS;

/// Class names in label order (also the alphabetical order an image folder gives them).
pub const CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The batch files of a split.
pub fn batch_names(split: Split) -> Vec<String> {
    match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    }
}

/// Where a directory keeps CIFAR-10 and in which layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// a directory holding `data_batch_*.bin` and `test_batch.bin`
    Binary(PathBuf),
    /// a directory holding `train/<class>/` and `test/<class>/`
    ImageFolder(PathBuf),
}

/// Finds CIFAR-10 in `dir` itself or in its `cifar-10-batches-bin/` or `cifar10-jpg/` subfolder.
pub fn detect(dir: &Path) -> Option<Layout> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin"), dir.join("cifar10-jpg")].into_iter().find_map(|d| {
        if d.join("test_batch.bin").is_file() || d.join("data_batch_1.bin").is_file() {
            Some(Layout::Binary(d))
        } else if d.join("train").is_dir() && d.join("test").is_dir() {
            Some(Layout::ImageFolder(d))
        } else {
            None
        }
    })
}

/// Loads a split from `dir` in whichever layout it has.
pub fn load(dir: &Path, split: Split, opts: &LoadOptions) -> Result<ImageDataset> {
    opts.validate()?;
    match detect(dir) {
        Some(Layout::Binary(d)) => load_binary(&d, split, opts),
        Some(Layout::ImageFolder(d)) => load_image_folder(&d, split, opts),
        None => Err(TrainError::NotFound(format!(
            "{}: no CIFAR-10 here (expected data_batch_1.bin..test_batch.bin, or train/ and test/ class folders, \
             possibly inside cifar-10-batches-bin/ or cifar10-jpg/)",
            dir.display()
        ))),
    }
}

/// Loads a split from the binary batch files in `dir`.
pub fn load_binary(dir: &Path, split: Split, opts: &LoadOptions) -> Result<ImageDataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in batch_names(split) {
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(TrainError::NotFound(format!("{}: CIFAR-10 batch file missing", path.display())));
        }
        parse_batch(&path, &read_maybe_gz(&path)?, &mut labels, &mut pixels)?;
        if opts.limit.is_some_and(|l| labels.len() >= l) {
            break;
        }
    }
    Ok(ImageDataset::from_u8(
        format!("cifar10/{}", split.name()),
        &pixels,
        labels,
        [3, SIDE, SIDE],
        classes(),
        Normalization::cifar10(),
        opts,
    ))
}

/// Appends the records of one batch file (`bytes`, the contents of `path`) to `labels` and
/// `pixels`; nothing is appended when the file is malformed.
pub fn parse_batch(path: &Path, bytes: &[u8], labels: &mut Vec<u32>, pixels: &mut Vec<u8>) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(TrainError::format(
            path,
            format!("{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records", bytes.len()),
        ));
    }
    if let Some((i, record)) = bytes.chunks_exact(RECORD).enumerate().find(|(_, r)| r[0] >= 10) {
        return Err(TrainError::format(path, format!("label {} of record {i} is outside 0..10", record[0])));
    }
    for record in bytes.chunks_exact(RECORD) {
        labels.push(record[0] as u32);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Loads a split from `dir/{train,test}/<class>/*`, checking the classes and image size.
pub fn load_image_folder(dir: &Path, split: Split, opts: &LoadOptions) -> Result<ImageDataset> {
    let root = dir.join(split.name());
    let folder_opts =
        ImageFolderOptions { channels: 3, resize: None, normalization: Normalization::cifar10(), load: opts.clone() };
    let (found, _) = image_folder::scan(&root)?;
    if found != CLASSES {
        return Err(TrainError::format(&root, format!("class folders {found:?}, expected CIFAR-10's {CLASSES:?}")));
    }
    let ds = image_folder::load(&root, &format!("cifar10/{}", split.name()), &folder_opts)?;
    let unpadded = (ds.height - 2 * opts.pad, ds.width - 2 * opts.pad);
    if unpadded != (SIDE, SIDE) {
        return Err(TrainError::format(&root, format!("images are {}x{}, expected 32x32", unpadded.0, unpadded.1)));
    }
    Ok(ds)
}

fn classes() -> Vec<String> {
    CLASSES.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `n` records: label i % 10, pixel k of record i = (i * 7 + k) % 256.
    fn write_batch(path: &Path, n: usize) {
        let mut bytes = Vec::with_capacity(n * RECORD);
        for i in 0..n {
            bytes.push((i % 10) as u8);
            bytes.extend((0..PIXELS).map(|k| ((i * 7 + k) % 256) as u8));
        }
        std::fs::write(path, bytes).unwrap();
    }

    fn write_all_batches(dir: &Path, n: usize) {
        for split in [Split::Train, Split::Test] {
            for name in batch_names(split) {
                write_batch(&dir.join(name), n);
            }
        }
    }

    #[test]
    fn binary_batches_load_as_planes() {
        let dir = tempfile::tempdir().unwrap();
        write_all_batches(dir.path(), 3);
        let train = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap();
        assert_eq!((train.len(), train.image_shape()), (15, [3, 32, 32]));
        assert_eq!(&train.labels[..4], &[0, 1, 2, 0]);
        let norm = Normalization::cifar10();
        // record 1, green plane (offset 1024), pixel (row 2, col 5): byte (7 + 1024 + 69) % 256
        let v = train.image(1)[1024 + 2 * 32 + 5];
        assert!((v - norm.apply(1, ((7 + 1024 + 69) % 256) as u8)).abs() < 1e-6);
        let test = load(dir.path(), Split::Test, &LoadOptions { pad: 0, limit: Some(2) }).unwrap();
        assert_eq!(test.len(), 2);
        assert_eq!(test.name, "cifar10/test");
    }

    #[test]
    fn subfolders_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&bin).unwrap();
        write_all_batches(&bin, 1);
        assert_eq!(detect(dir.path()), Some(Layout::Binary(bin)));
        assert_eq!(detect(&dir.path().join("nothing")), None);
        let err = load(&dir.path().join("nothing"), Split::Test, &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no CIFAR-10 here"), "{err}");
    }

    #[test]
    fn malformed_batches_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_all_batches(dir.path(), 2);
        let path = dir.path().join("test_batch.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("test_batch.bin") && err.contains("6145 bytes"), "{err}");
        bytes.push(0);
        bytes[RECORD] = 10;
        std::fs::write(&path, &bytes).unwrap();
        let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("label 10 of record 1"), "{err}");
        std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
        let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("data_batch_3.bin"), "{err}");
    }

    #[test]
    fn image_folder_layout_loads_with_cifar_classes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cifar10-jpg");
        for split in ["train", "test"] {
            for (i, class) in CLASSES.iter().enumerate() {
                crate::data::image_folder::tests::write_png(
                    &root.join(split).join(class).join("0000.png"),
                    32,
                    32,
                    i as u8,
                );
            }
        }
        let ds = load(dir.path(), Split::Test, &LoadOptions { pad: 0, limit: None }).unwrap();
        assert_eq!(ds.labels, (0..10).collect::<Vec<u32>>());
        assert_eq!(ds.classes, CLASSES);
        assert_eq!(ds.normalization, Normalization::cifar10());
        std::fs::create_dir_all(root.join("test/zebra")).unwrap();
        crate::data::image_folder::tests::write_png(&root.join("test/zebra/0.png"), 32, 32, 0);
        let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("zebra"), "{err}");
    }
}
