//! Image augmentation on normalised `[C, H, W]` images: random crop after padding (the
//! padding is black, i.e. each channel's normalised value of a 0 byte) and horizontal flip —
//! the standard CIFAR recipe is a 4-pixel pad and a flip with probability 1/2.

use rand::{Rng, RngExt};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Augmentation {
    /// Pad every side by this much, then crop back to the original size at a random offset.
    pub crop_pad: usize,
    /// Mirror left-right with probability 1/2.
    pub hflip: bool,
}

impl Augmentation {
    pub fn none() -> Augmentation {
        Augmentation::default()
    }

    /// Random crop with 4-pixel padding and horizontal flip.
    pub fn cifar() -> Augmentation {
        Augmentation { crop_pad: 4, hflip: true }
    }

    pub fn is_identity(&self) -> bool {
        self.crop_pad == 0 && !self.hflip
    }

    /// Writes a randomly augmented copy of `src` (`[C, H, W]` = `shape`) into `dst`; `fill[c]` is
    /// the value of padding in channel `c`.
    pub fn apply(&self, src: &[f32], shape: [usize; 3], fill: &[f32], rng: &mut impl Rng, dst: &mut [f32]) {
        let p = self.crop_pad as i64;
        let dy = rng.random_range(-p..=p) as isize;
        let dx = rng.random_range(-p..=p) as isize;
        let flip = self.hflip && rng.random_bool(0.5);
        shift_flip(src, shape, fill, (dy, dx), flip, dst);
    }
}

/// `dst[c, y, x] = src[c, y + dy, x' + dx]` with `x' = W-1-x` when flipping (flip applied after
/// the crop, as torchvision's RandomCrop then RandomHorizontalFlip), `fill[c]` outside `src`.
pub fn shift_flip(
    src: &[f32],
    [c, h, w]: [usize; 3],
    fill: &[f32],
    (dy, dx): (isize, isize),
    flip: bool,
    dst: &mut [f32],
) {
    for ch in 0..c {
        let plane = &src[ch * h * w..][..h * w];
        let out = &mut dst[ch * h * w..][..h * w];
        for y in 0..h {
            let sy = y as isize + dy;
            for x in 0..w {
                let cx = if flip { w - 1 - x } else { x };
                let sx = cx as isize + dx;
                let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                out[y * w + x] = if inside { plane[sy as usize * w + sx as usize] } else { fill[ch] };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    // 2 channels of 3x4, value = 100 * c + 10 * y + x
    fn image() -> Vec<f32> {
        (0..24).map(|i| (100 * (i / 12) + 10 * ((i % 12) / 4) + i % 4) as f32).collect()
    }

    #[test]
    fn shift_fills_the_border_and_flip_mirrors() {
        let src = image();
        let fill = [-1.0, -2.0];
        let mut dst = vec![0.0; 24];
        shift_flip(&src, [2, 3, 4], &fill, (0, 0), false, &mut dst);
        assert_eq!(dst, src);
        shift_flip(&src, [2, 3, 4], &fill, (-1, 2), false, &mut dst);
        // row 0 comes from row -1 (fill); row 1, col 0 from (0, 2)
        assert_eq!(&dst[..4], &[-1.0; 4]);
        assert_eq!(&dst[4..8], &[2.0, 3.0, -1.0, -1.0]);
        assert_eq!(&dst[12..16], &[-2.0; 4]);
        assert_eq!(&dst[16..20], &[102.0, 103.0, -2.0, -2.0]);
        shift_flip(&src, [2, 3, 4], &fill, (0, 0), true, &mut dst);
        assert_eq!(&dst[20..24], &[123.0, 122.0, 121.0, 120.0]); // channel 1, row 2, mirrored
    }

    #[test]
    fn random_offsets_cover_the_padding_and_flip_half_the_time() {
        let aug = Augmentation { crop_pad: 1, hflip: true };
        let src = image();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut seen = std::collections::HashSet::new();
        let mut flips = 0;
        let mut dst = vec![0.0; 24];
        for _ in 0..400 {
            aug.apply(&src, [2, 3, 4], &[-1.0, -2.0], &mut rng, &mut dst);
            // the centre pixel (1, 1) or (1, 2) after the flip tells the offset and the flip
            let v = dst[4 + 1] as isize;
            seen.insert(v);
            flips += (dst[4 + 1] > dst[4 + 2]) as usize;
        }
        // (dy, dx) in {-1, 0, 1}^2, with or without flip: 18 different centre values at most;
        // all 9 offsets show up among them
        assert!(seen.len() >= 9, "{seen:?}");
        assert!((150..250).contains(&flips), "{flips} flips in 400");
        assert!(Augmentation::none().is_identity() && !Augmentation::cifar().is_identity());
    }
}
