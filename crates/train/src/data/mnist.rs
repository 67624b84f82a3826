//! MNIST and Fashion-MNIST from their IDX files (`train-images-idx3-ubyte[.gz]`, ...).

use super::idx::parse_idx;
use super::read::{find_plain_or_gz, read_maybe_gz};
use super::{ImageDataset, LoadOptions, Normalization, Split};
use crate::error::{Result, TrainError};
use std::path::Path;

pub const IMAGE_SIDE: usize = 28;

/// Fashion-MNIST's class names in label order.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// The two data sets in MNIST's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistKind {
    Digits,
    Fashion,
}

impl MnistKind {
    pub fn name(self) -> &'static str {
        match self {
            MnistKind::Digits => "mnist",
            MnistKind::Fashion => "fashion-mnist",
        }
    }

    pub fn classes(self) -> Vec<String> {
        match self {
            MnistKind::Digits => (0..10).map(|d| d.to_string()).collect(),
            MnistKind::Fashion => FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn normalization(self) -> Normalization {
        match self {
            MnistKind::Digits => Normalization::mnist(),
            MnistKind::Fashion => Normalization::fashion_mnist(),
        }
    }
}

/// File stems of a split: (images, labels).
pub fn file_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// Loads one split from `dir`, each file plain or gzipped.
pub fn load(dir: &Path, kind: MnistKind, split: Split, opts: &LoadOptions) -> Result<ImageDataset> {
    opts.validate()?;
    let (images_name, labels_name) = file_names(split);
    let find = |name: &str| {
        find_plain_or_gz(dir, name).ok_or_else(|| {
            TrainError::NotFound(format!(
                "{}: no {name} or {name}.gz for {} {}",
                dir.display(),
                kind.name(),
                split.name()
            ))
        })
    };
    let (images_path, labels_path) = (find(images_name)?, find(labels_name)?);

    let images = parse_idx(&images_path, &read_maybe_gz(&images_path)?, 3)?;
    if images.dims[1..] != [IMAGE_SIDE, IMAGE_SIDE] {
        return Err(TrainError::format(
            &images_path,
            format!("images are {}x{}, expected {IMAGE_SIDE}x{IMAGE_SIDE}", images.dims[1], images.dims[2]),
        ));
    }
    if images.dims[0] == 0 {
        return Err(TrainError::format(&images_path, "holds 0 images; a data set needs at least one"));
    }
    let labels = parse_idx(&labels_path, &read_maybe_gz(&labels_path)?, 1)?;
    if labels.dims[0] != images.dims[0] {
        return Err(TrainError::format(
            &labels_path,
            format!("{} labels for the {} images of {}", labels.dims[0], images.dims[0], images_path.display()),
        ));
    }
    if let Some(pos) = labels.data.iter().position(|&l| l >= 10) {
        return Err(TrainError::format(
            &labels_path,
            format!("label {} at index {pos} is outside 0..10", labels.data[pos]),
        ));
    }
    let labels = labels.data.iter().map(|&l| l as u32).collect();
    Ok(ImageDataset::from_u8(
        format!("{}/{}", kind.name(), split.name()),
        &images.data,
        labels,
        [1, IMAGE_SIDE, IMAGE_SIDE],
        kind.classes(),
        kind.normalization(),
        opts,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::idx::encode_idx;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    /// Writes `n` images whose pixel (r, c) of image i is (i + r + c) % 256, labels i % 10.
    pub(crate) fn write_fake_mnist(dir: &Path, split: Split, n: usize, gzip: bool) {
        let (images_name, labels_name) = file_names(split);
        let pixels: Vec<u8> = (0..n * 784).map(|k| ((k / 784) + (k % 784) / 28 + (k % 28)) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        for (name, bytes) in
            [(images_name, encode_idx(&[n, 28, 28], &pixels)), (labels_name, encode_idx(&[n], &labels))]
        {
            if gzip {
                let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
                enc.write_all(&bytes).unwrap();
                std::fs::write(dir.join(format!("{name}.gz")), enc.finish().unwrap()).unwrap();
            } else {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    #[test]
    fn loads_gzipped_and_plain_files_with_padding() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_mnist(dir.path(), Split::Train, 5, true);
        write_fake_mnist(dir.path(), Split::Test, 3, false);
        let train = load(dir.path(), MnistKind::Digits, Split::Train, &LoadOptions::default()).unwrap();
        assert_eq!((train.len(), train.image_shape()), (5, [1, 28, 28]));
        assert_eq!(train.labels, vec![0, 1, 2, 3, 4]);
        let norm = Normalization::mnist();
        // image 2, row 3, col 4 holds byte 9
        assert!((train.image(2)[3 * 28 + 4] - norm.apply(0, 9)).abs() < 1e-6);

        let test = load(dir.path(), MnistKind::Fashion, Split::Test, &LoadOptions { pad: 2, limit: None }).unwrap();
        assert_eq!((test.len(), test.image_shape()), (3, [1, 32, 32]));
        assert_eq!(test.classes[9], "Ankle boot");
        let fnorm = Normalization::fashion_mnist();
        assert_eq!(test.image(1)[0], fnorm.apply(0, 0));
        // image 1, row 0, col 0 -> padded position (2, 2), byte 1
        assert!((test.image(1)[2 * 32 + 2] - fnorm.apply(0, 1)).abs() < 1e-6);
        assert_eq!(test.name, "fashion-mnist/test");
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), MnistKind::Digits, Split::Train, &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");

        write_fake_mnist(dir.path(), Split::Train, 4, false);
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), encode_idx(&[3], &[0, 1, 2])).unwrap();
        let err = load(dir.path(), MnistKind::Digits, Split::Train, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("train-labels-idx1-ubyte") && err.contains("3 labels for the 4 images"), "{err}");

        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), encode_idx(&[4], &[0, 1, 12, 2])).unwrap();
        let err = load(dir.path(), MnistKind::Digits, Split::Train, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("label 12 at index 2"), "{err}");

        std::fs::write(dir.path().join("train-images-idx3-ubyte"), encode_idx(&[4, 27, 28], &[0; 4 * 27 * 28]))
            .unwrap();
        let err = load(dir.path(), MnistKind::Digits, Split::Train, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte") && err.contains("27x28"), "{err}");
    }

    #[test]
    fn empty_files_and_a_zero_limit_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_mnist(dir.path(), Split::Train, 0, false);
        let err = load(dir.path(), MnistKind::Digits, Split::Train, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte") && err.contains("holds 0 images"), "{err}");
        write_fake_mnist(dir.path(), Split::Test, 3, false);
        let zero = LoadOptions { pad: 0, limit: Some(0) };
        let err = load(dir.path(), MnistKind::Digits, Split::Test, &zero).unwrap_err().to_string();
        assert_eq!(err, "limit = 0 is out of range: it must be at least 1");
    }
}
