//! Choosing an image data set by name (`--dataset`) with an optional `--data-dir` override.

use super::image_folder::{self, ImageFolderOptions};
use super::mnist::MnistKind;
use super::{cifar, locate, mnist, ImageDataset, LoadOptions, Normalization, Split};
use crate::error::{Result, TrainError};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageDatasetKind {
    Mnist,
    FashionMnist,
    Cifar10,
    /// any `{train,test}/<class>/*.png|jpg` folder given by `--data-dir` (RGB, mean/std 0.5)
    ImageFolder,
}

impl ImageDatasetKind {
    pub const NAMES: [&'static str; 4] = ["mnist", "fashion-mnist", "cifar10", "folder"];

    pub fn parse(name: &str) -> Result<ImageDatasetKind> {
        match name.to_ascii_lowercase().as_str() {
            "mnist" => Ok(ImageDatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Ok(ImageDatasetKind::FashionMnist),
            "cifar10" | "cifar-10" => Ok(ImageDatasetKind::Cifar10),
            "folder" | "image-folder" => Ok(ImageDatasetKind::ImageFolder),
            _ => Err(TrainError::Config(format!("unknown data set {name:?}; known: {}", Self::NAMES.join(", ")))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageDatasetKind::Mnist => "mnist",
            ImageDatasetKind::FashionMnist => "fashion-mnist",
            ImageDatasetKind::Cifar10 => "cifar10",
            ImageDatasetKind::ImageFolder => "folder",
        }
    }

    /// The data directory: `data_dir` if given, else where the data set is found without flags.
    pub fn locate(self, data_dir: Option<&Path>) -> Result<PathBuf> {
        if let Some(dir) = data_dir {
            return Ok(dir.to_path_buf());
        }
        let found = match self {
            ImageDatasetKind::Mnist => locate::find_bundled_mnist(),
            ImageDatasetKind::FashionMnist => locate::find_fashion_mnist(),
            ImageDatasetKind::Cifar10 => locate::find_cifar10(),
            ImageDatasetKind::ImageFolder => None,
        };
        found.ok_or_else(|| {
            TrainError::NotFound(match self {
                ImageDatasetKind::Mnist => "MNIST not found in data/mnist; pass --data-dir".into(),
                ImageDatasetKind::FashionMnist => format!(
                    "Fashion-MNIST not found in data/fashion-mnist or {}; `apt-get install dataset-fashion-mnist` \
                     or pass --data-dir",
                    locate::DEBIAN_FASHION_MNIST
                ),
                ImageDatasetKind::Cifar10 => "CIFAR-10 not found in data/cifar10; pass --data-dir pointing at the \
                                              binary batches or an unpacked cifar10-jpg folder"
                    .into(),
                ImageDatasetKind::ImageFolder => "the folder data set needs --data-dir".into(),
            })
        })
    }

    /// Loads a split, from `data_dir` or the default location.
    pub fn load(self, split: Split, data_dir: Option<&Path>, opts: &LoadOptions) -> Result<ImageDataset> {
        let dir = self.locate(data_dir)?;
        match self {
            ImageDatasetKind::Mnist => mnist::load(&dir, MnistKind::Digits, split, opts),
            ImageDatasetKind::FashionMnist => mnist::load(&dir, MnistKind::Fashion, split, opts),
            ImageDatasetKind::Cifar10 => cifar::load(&dir, split, opts),
            ImageDatasetKind::ImageFolder => image_folder::check_same_classes(&dir).and_then(|()| {
                image_folder::load(
                    &dir.join(split.name()),
                    &format!("folder/{}", split.name()),
                    &ImageFolderOptions {
                        channels: 3,
                        resize: None,
                        normalization: Normalization::new(&[0.5; 3], &[0.5; 3]),
                        load: opts.clone(),
                    },
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_list_the_known_ones() {
        for name in ImageDatasetKind::NAMES {
            assert_eq!(ImageDatasetKind::parse(name).unwrap().name(), name);
        }
        let err = ImageDatasetKind::parse("imagenet").unwrap_err().to_string();
        assert!(err.contains("imagenet") && err.contains("cifar10"), "{err}");
    }

    #[test]
    fn data_dir_overrides_the_default_location() {
        let dir = tempfile::tempdir().unwrap();
        crate::data::mnist::tests::write_fake_mnist(dir.path(), Split::Test, 2, false);
        let ds = ImageDatasetKind::Mnist.load(Split::Test, Some(dir.path()), &LoadOptions::default()).unwrap();
        assert_eq!(ds.len(), 2);
        let err = ImageDatasetKind::ImageFolder.locate(None).unwrap_err().to_string();
        assert!(err.contains("--data-dir"), "{err}");
    }

    #[test]
    fn folder_splits_with_different_classes_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let png = crate::data::image_folder::tests::write_png;
        for (split, class) in [("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "cow")] {
            png(&dir.path().join(split).join(class).join("0.png"), 2, 2, 0);
        }
        for split in [Split::Train, Split::Test] {
            let err = ImageDatasetKind::ImageFolder
                .load(split, Some(dir.path()), &LoadOptions::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(r#"only in train/: ["dog"], only in test/: ["cow"]"#), "{err}");
        }
        png(&dir.path().join("test/dog/0.png"), 2, 2, 0);
        std::fs::remove_dir_all(dir.path().join("test/cow")).unwrap();
        let ds = ImageDatasetKind::ImageFolder.load(Split::Test, Some(dir.path()), &LoadOptions::default()).unwrap();
        assert_eq!(ds.classes, ["cat", "dog"]);
    }

    #[test]
    fn bundled_mnist_test_split_loads() {
        let ds = ImageDatasetKind::Mnist
            .load(Split::Test, None, &LoadOptions { pad: 2, limit: Some(100) })
            .expect("bundled MNIST");
        assert_eq!((ds.len(), ds.image_shape()), (100, [1, 32, 32]));
        assert!(ds.labels.iter().all(|&l| l < 10));
    }
}
