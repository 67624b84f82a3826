//! Data sets, all loaded into one in-memory form: [`ImageDataset`] for image classification
//! (f32 `[N, C, H, W]`, normalised, u32 labels), [`text::CharCorpus`] for character-level
//! language modelling, and [`seq2seq`] for synthetic sequence-to-sequence tasks.

pub mod cifar;
pub mod idx;
pub mod image_folder;
pub mod locate;
pub mod mnist;
pub mod read;
pub mod select;
pub mod seq2seq;
pub mod text;

use ferrograd_graph::range::{at_least_one, OutOfRange};

/// Which half of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Per-channel normalisation `(x / 255 - mean[c]) / std[c]`, as torchvision's `ToTensor` + `Normalize`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    pub fn new(mean: &[f32], std: &[f32]) -> Normalization {
        Normalization { mean: mean.to_vec(), std: std.to_vec() }
    }

    /// MNIST's training-set statistics.
    pub fn mnist() -> Normalization {
        Normalization::new(&[0.1307], &[0.3081])
    }

    /// Fashion-MNIST's training-set statistics.
    pub fn fashion_mnist() -> Normalization {
        Normalization::new(&[0.2860], &[0.3530])
    }

    /// CIFAR-10's training-set per-channel statistics (R, G, B).
    pub fn cifar10() -> Normalization {
        Normalization::new(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616])
    }

    /// The value a raw byte `v` of channel `c` becomes.
    pub fn apply(&self, c: usize, v: u8) -> f32 {
        (v as f32 / 255.0 - self.mean[c]) / self.std[c]
    }

    /// The raw byte (as f32, unclamped) that normalised value `x` of channel `c` came from.
    pub fn invert(&self, c: usize, x: f32) -> f32 {
        (x * self.std[c] + self.mean[c]) * 255.0
    }
}

/// Options applied while loading an image data set.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Black border added on every side (LeNet-5 wants MNIST padded by 2 to 32x32).
    pub pad: usize,
    /// Keep only the first `limit` examples (quick runs and tests).
    pub limit: Option<usize>,
}

impl LoadOptions {
    /// A `limit` of 0 would keep no examples.
    pub fn validate(&self) -> Result<(), OutOfRange> {
        self.limit.map_or(Ok(()), |l| at_least_one("limit", l))
    }
}

/// Images `[N, C, H, W]` as normalised f32, with their labels.
#[derive(Clone, Debug)]
pub struct ImageDataset {
    /// e.g. "mnist/train"
    pub name: String,
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Class names in label order.
    pub classes: Vec<String>,
    pub normalization: Normalization,
}

impl ImageDataset {
    /// Builds a data set from raw bytes `[N, C, H, W]`, normalising and adding a black border of
    /// `opts.pad`. The caller has checked that `pixels` holds `labels.len() * c * h * w` bytes.
    pub fn from_u8(
        name: String,
        pixels: &[u8],
        labels: Vec<u32>,
        [c, h, w]: [usize; 3],
        classes: Vec<String>,
        normalization: Normalization,
        opts: &LoadOptions,
    ) -> ImageDataset {
        let n = opts.limit.map_or(labels.len(), |l| l.min(labels.len()));
        let mut labels = labels;
        labels.truncate(n);
        let p = opts.pad;
        let (ph, pw) = (h + 2 * p, w + 2 * p);
        let mut images = Vec::with_capacity(n * c * ph * pw);
        for i in 0..n {
            for ch in 0..c {
                let border = normalization.apply(ch, 0);
                let plane = &pixels[(i * c + ch) * h * w..][..h * w];
                images.extend(std::iter::repeat_n(border, p * pw));
                for row in plane.chunks_exact(w) {
                    images.extend(std::iter::repeat_n(border, p));
                    images.extend(row.iter().map(|&v| normalization.apply(ch, v)));
                    images.extend(std::iter::repeat_n(border, p));
                }
                images.extend(std::iter::repeat_n(border, p * pw));
            }
        }
        ImageDataset { name, images, labels, channels: c, height: ph, width: pw, classes, normalization }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The normalised values of image `i`, `[C, H, W]`.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.image_len()..][..self.image_len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_u8_normalises_and_pads_with_black() {
        let norm = Normalization::new(&[0.5, 0.25], &[0.5, 0.25]);
        // two images, two channels, 1x2
        let pixels = [255u8, 0, 51, 102, 0, 255, 204, 153];
        let ds = ImageDataset::from_u8(
            "t".into(),
            &pixels,
            vec![1, 0],
            [2, 1, 2],
            vec!["a".into(), "b".into()],
            norm.clone(),
            &LoadOptions { pad: 1, limit: None },
        );
        assert_eq!(ds.image_shape(), [2, 3, 4]);
        assert_eq!(ds.images.len(), 2 * 2 * 3 * 4);
        let img1 = ds.image(1);
        let black_c1 = (0.0 - 0.25) / 0.25;
        // channel 1 of image 1: border row, then [border, 204, 153, border], then border row
        let plane = &img1[12..24];
        assert!(plane[..4].iter().all(|&v| v == black_c1));
        assert_eq!(plane[4], black_c1);
        assert!((plane[5] - (204.0 / 255.0 - 0.25) / 0.25).abs() < 1e-6);
        assert!((plane[6] - (153.0 / 255.0 - 0.25) / 0.25).abs() < 1e-6);
        assert!((norm.invert(1, plane[6]) - 153.0).abs() < 1e-3);
        assert_eq!(ds.labels, vec![1, 0]);
    }

    #[test]
    fn limit_keeps_the_first_examples() {
        let ds = ImageDataset::from_u8(
            "t".into(),
            &[1, 2, 3],
            vec![0, 1, 2],
            [1, 1, 1],
            vec!["a".into(), "b".into(), "c".into()],
            Normalization::mnist(),
            &LoadOptions { pad: 0, limit: Some(2) },
        );
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.images.len(), 2);
        assert_eq!(ds.labels, vec![0, 1]);
    }
}
