//! Image folders in torchvision's `ImageFolder` layout: `root/<class>/*.png|jpg`, classes sorted
//! by name and numbered in that order, files sorted by name within a class.

use super::{ImageDataset, LoadOptions, Normalization};
use crate::error::{Result, TrainError};
use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// The largest side an image may declare; files claiming more are refused before decoding.
pub const MAX_SIDE: u32 = 16_384;
/// What a whole in-memory data set may take (its bytes plus its f32 copy), checked from the
/// first image's header before anything is allocated.
pub const DATASET_BUDGET_BYTES: u64 = 8 << 30;

/// How the images of a folder become arrays.
#[derive(Clone, Debug)]
pub struct ImageFolderOptions {
    /// 1 (grey) or 3 (RGB); images are converted.
    pub channels: usize,
    /// Resize every image to `(height, width)`; without it all images must share one size.
    pub resize: Option<(usize, usize)>,
    pub normalization: Normalization,
    /// `limit` takes files from the classes in turn, so a small limit still sees every class.
    pub load: LoadOptions,
}

/// The sorted class folder names and the sorted image files of each.
pub fn scan(root: &Path) -> Result<(Vec<String>, Vec<Vec<PathBuf>>)> {
    let read_dir = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
            entries.push(entry.map_err(|e| TrainError::io(dir, e))?.path());
        }
        entries.sort();
        Ok(entries)
    };
    let mut classes = Vec::new();
    let mut files = Vec::new();
    for class_dir in read_dir(root)?.into_iter().filter(|p| p.is_dir()) {
        let images: Vec<PathBuf> = read_dir(&class_dir)?
            .into_iter()
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        if images.is_empty() {
            continue;
        }
        classes.push(class_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        files.push(images);
    }
    if classes.is_empty() {
        return Err(TrainError::NotFound(format!(
            "{}: no class folders with .png/.jpg images (expected root/<class>/*.png|jpg)",
            root.display()
        )));
    }
    Ok((classes, files))
}

/// Checks that `root/train` and `root/test` hold the same class folders, so that a label
/// means one class in both.
pub fn check_same_classes(root: &Path) -> Result<()> {
    let (train, test) = (scan(&root.join("train"))?.0, scan(&root.join("test"))?.0);
    if train == test {
        return Ok(());
    }
    let only = |a: &[String], b: &[String]| a.iter().filter(|c| !b.contains(c)).cloned().collect::<Vec<_>>();
    Err(TrainError::format(
        root,
        format!(
            "train/ and test/ must hold the same class folders (a label is a class's position); \
             only in train/: {:?}, only in test/: {:?}",
            only(&train, &test),
            only(&test, &train)
        ),
    ))
}

/// Loads every image under `root` as one data set named `name`.
pub fn load(root: &Path, name: &str, opts: &ImageFolderOptions) -> Result<ImageDataset> {
    opts.load.validate()?;
    if opts.channels != 1 && opts.channels != 3 {
        return Err(TrainError::Config(format!("image folders load 1 or 3 channels, not {}", opts.channels)));
    }
    if opts.normalization.mean.len() != opts.channels || opts.normalization.std.len() != opts.channels {
        return Err(TrainError::Config(format!(
            "normalisation has {} means and {} stds for {} channels",
            opts.normalization.mean.len(),
            opts.normalization.std.len(),
            opts.channels
        )));
    }
    let (classes, files) = scan(root)?;
    let samples = order_samples(&files, opts.load.limit);
    let (h, w) = match opts.resize {
        Some((0, _) | (_, 0)) => return Err(TrainError::Config("resize to an empty image (a side of 0)".into())),
        Some(hw) => hw,
        None => first_image_size(&samples[0].0)?,
    };
    check_budget(root, samples.len(), [opts.channels, h, w], opts.load.pad)?;
    let pixels = decode_all(&samples, opts.channels, (h, w), opts.resize.is_some())?;
    let labels = samples.iter().map(|s| s.1).collect();
    let load = LoadOptions { limit: None, ..opts.load.clone() };
    Ok(ImageDataset::from_u8(
        name.to_string(),
        &pixels,
        labels,
        [opts.channels, h, w],
        classes,
        opts.normalization.clone(),
        &load,
    ))
}

/// `(height, width)` of the image at `path` from its header, refused when a side is 0 or
/// larger than [`MAX_SIDE`].
fn first_image_size(path: &Path) -> Result<(usize, usize)> {
    let too_large = |declared: String| {
        let what = format!("images with sides of 1..={MAX_SIDE} load (shrink or remove it)");
        TrainError::format(path, format!("the header declares {declared}; {what}"))
    };
    let (w, h) =
        ImageReader::open(path).map_err(|e| TrainError::io(path, e))?.into_dimensions().map_err(|e| match e {
            image::ImageError::Limits(_) => too_large(format!("a size beyond the decoder's limits ({e})")),
            e => TrainError::format(path, format!("cannot read image: {e}")),
        })?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(too_large(format!("{h}x{w}")));
    }
    Ok((h as usize, w as usize))
}

/// Refuses one image of `[c, h, w]` over `image::Limits`' allocation limit, or `n` of them
/// (with a border of `pad`) whose bytes and f32 copy would exceed [`DATASET_BUDGET_BYTES`].
fn check_budget(root: &Path, n: usize, [c, h, w]: [usize; 3], pad: usize) -> Result<()> {
    let product = |xs: &[usize]| xs.iter().try_fold(1u64, |acc, &x| acc.checked_mul(x as u64));
    let max = Limits::default().max_alloc.unwrap_or(u64::MAX);
    if product(&[c, h, w]).is_none_or(|b| b > max) {
        return Err(TrainError::format(
            root,
            format!("one image of {c}x{h}x{w} is over the {max} bytes an image may take"),
        ));
    }
    let (h, w) = (h.saturating_add(2 * pad), w.saturating_add(2 * pad));
    let bytes = product(&[n, c, h, w, 1 + 4]);
    match bytes {
        Some(b) if b <= DATASET_BUDGET_BYTES => Ok(()),
        _ => Err(TrainError::format(
            root,
            format!(
                "{n} images of {c}x{h}x{w} need {} GiB in memory, over the {} GiB a data set may take; \
                 resize the images or load fewer (a limit)",
                bytes.map_or("more than 16 EiB".into(), |b| format!("{:.1}", b as f64 / (1u64 << 30) as f64)),
                DATASET_BUDGET_BYTES >> 30
            ),
        )),
    }
}

/// All (file, label) pairs class by class, or with a limit, taken from the classes in turn.
fn order_samples(files: &[Vec<PathBuf>], limit: Option<usize>) -> Vec<(PathBuf, u32)> {
    let Some(limit) = limit else {
        return files.iter().enumerate().flat_map(|(c, fs)| fs.iter().map(move |f| (f.clone(), c as u32))).collect();
    };
    let mut out = Vec::with_capacity(limit);
    let longest = files.iter().map(Vec::len).max().unwrap_or(0);
    'outer: for i in 0..longest {
        for (c, fs) in files.iter().enumerate() {
            if out.len() == limit {
                break 'outer;
            }
            if let Some(f) = fs.get(i) {
                out.push((f.clone(), c as u32));
            }
        }
    }
    out
}

/// Decodes the images on all cores into `[N, C, H, W]` bytes.
fn decode_all(samples: &[(PathBuf, u32)], channels: usize, (h, w): (usize, usize), resize: bool) -> Result<Vec<u8>> {
    let per_image = channels * h * w;
    // The first image is decoded before the whole set is allocated, so a forged header
    // costs one image's buffer, not N of them.
    let mut first = vec![0u8; per_image];
    decode_into(&samples[0].0, channels, (h, w), resize, &mut first)?;
    let total = samples.len() * per_image;
    let mut pixels = Vec::new();
    // within the budget, but an allocation the system still refuses is an error, not an abort
    pixels
        .try_reserve_exact(total)
        .map_err(|e| TrainError::Config(format!("cannot allocate {total} bytes for {} images: {e}", samples.len())))?;
    pixels.extend_from_slice(&first);
    pixels.resize(total, 0);
    let rest = &samples[1..];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rest.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .chunks(chunk)
            .zip(pixels[per_image..].chunks_mut(chunk * per_image))
            .map(|(files, out)| {
                scope.spawn(move || -> Result<()> {
                    for ((path, _), dst) in files.iter().zip(out.chunks_exact_mut(per_image)) {
                        decode_into(path, channels, (h, w), resize, dst)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })?;
    Ok(pixels)
}

fn decode_into(path: &Path, channels: usize, (h, w): (usize, usize), resize: bool, dst: &mut [u8]) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    decode_image(path, &bytes, channels, (h, w), resize, dst)
}

/// Decodes `bytes` (the contents of `path`, whose extension names the format) into `dst` as
/// `channels` planes of `h`x`w`, resizing when `resize` is set; otherwise the image must be
/// `h`x`w`. A header declaring more than that (or than [`MAX_SIDE`] when resizing) is refused
/// before any pixel is decoded.
pub fn decode_image(
    path: &Path,
    bytes: &[u8],
    channels: usize,
    (h, w): (usize, usize),
    resize: bool,
    dst: &mut [u8],
) -> Result<()> {
    let bad = |e: image::ImageError| TrainError::format(path, format!("cannot decode image: {e}"));
    let limits = |max_h: u32, max_w: u32| {
        let mut limits = Limits::default();
        (limits.max_image_height, limits.max_image_width) = (Some(max_h), Some(max_w));
        limits
    };
    let reader = |limits: Limits| -> Result<ImageReader<Cursor<&[u8]>>> {
        let mut reader = ImageReader::new(Cursor::new(bytes));
        match ImageFormat::from_path(path) {
            Ok(format) => reader.set_format(format),
            Err(_) => reader = reader.with_guessed_format().map_err(|e| TrainError::io(path, e))?,
        }
        reader.limits(limits);
        Ok(reader)
    };
    let (iw, ih) = reader(limits(MAX_SIDE, MAX_SIDE))?.into_dimensions().map_err(bad)?;
    if !resize && (ih as usize, iw as usize) != (h, w) {
        return Err(TrainError::format(
            path,
            format!("image is {ih}x{iw}, the folder's first image is {h}x{w} (set a resize)"),
        ));
    }
    // decoding allocates no more than the size it must come out as (or MAX_SIDE when resizing)
    let (max_h, max_w) = if resize { (MAX_SIDE, MAX_SIDE) } else { (h as u32, w as u32) };
    let mut img = reader(limits(max_h, max_w))?.decode().map_err(bad)?;
    if (img.height() as usize, img.width() as usize) != (h, w) {
        let (tw, th) = (w as u32, h as u32);
        // A triangle filter's support grows with the scale, so shrinking a photo-sized image
        // (or a forged header's) to a few pixels took seconds: area-average down to twice
        // the size first, which costs one pass over the pixels.
        if img.width() > 2 * tw || img.height() > 2 * th {
            img = img.thumbnail_exact(img.width().min(2 * tw), img.height().min(2 * th));
        }
        img = img.resize_exact(tw, th, FilterType::Triangle);
    }
    let plane = h * w;
    if channels == 1 {
        dst.copy_from_slice(img.to_luma8().as_raw());
    } else {
        for (i, px) in img.to_rgb8().pixels().enumerate() {
            for c in 0..3 {
                dst[c * plane + i] = px.0[c];
            }
        }
    }
    Ok(())
}

/// One image file prepared like the images of `like` (same channels, size and normalisation),
/// for prediction and visualisation: it is resized to the unpadded size and given the same
/// `pad`-pixel black border. Returns the `[C, H, W]` values.
pub fn load_like(path: &Path, like: &ImageDataset, pad: usize) -> Result<Vec<f32>> {
    let (h, w) = (like.height - 2 * pad, like.width - 2 * pad);
    let mut pixels = vec![0u8; like.channels * h * w];
    decode_into(path, like.channels, (h, w), true, &mut pixels)?;
    let opts = LoadOptions { pad, limit: None };
    let one = ImageDataset::from_u8(
        path.display().to_string(),
        &pixels,
        vec![0],
        [like.channels, h, w],
        like.classes.clone(),
        like.normalization.clone(),
        &opts,
    );
    Ok(one.images)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Saves a `w`x`h` RGB image whose pixel (x, y) is (r, g, b) = (seed + x, seed + y, seed).
    pub(crate) fn write_png(path: &Path, w: u32, h: u32, seed: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([seed + x as u8, seed + y as u8, seed]));
        img.save(path).unwrap();
    }

    fn rgb_options(limit: Option<usize>, resize: Option<(usize, usize)>) -> ImageFolderOptions {
        ImageFolderOptions {
            channels: 3,
            resize,
            normalization: Normalization::new(&[0.0; 3], &[1.0; 3]),
            load: LoadOptions { pad: 0, limit },
        }
    }

    #[test]
    fn classes_sorted_by_name_pixels_in_planes() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("zebra/b.png"), 4, 3, 10);
        write_png(&dir.path().join("zebra/a.png"), 4, 3, 20);
        write_png(&dir.path().join("apple/x.png"), 4, 3, 30);
        std::fs::write(dir.path().join("apple/notes.txt"), "ignored").unwrap();
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        let ds = load(dir.path(), "toy", &rgb_options(None, None)).unwrap();
        assert_eq!(ds.classes, vec!["apple", "zebra"]);
        assert_eq!(ds.labels, vec![0, 1, 1]);
        assert_eq!(ds.image_shape(), [3, 3, 4]);
        // second sample is zebra/a.png (seed 20); pixel (x=2, y=1): r=22, g=21, b=20
        let img = ds.image(1);
        let at = |c: usize| img[c * 12 + 4 + 2] * 255.0;
        assert!((at(0) - 22.0).abs() < 1e-3 && (at(1) - 21.0).abs() < 1e-3 && (at(2) - 20.0).abs() < 1e-3);
    }

    #[test]
    fn limit_takes_classes_in_turn_and_resize_unifies_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            write_png(&dir.path().join(format!("a/{i}.png")), 4, 4, i);
            write_png(&dir.path().join(format!("b/{i}.jpg")), 6, 5, i);
        }
        let ds = load(dir.path(), "toy", &rgb_options(Some(3), Some((2, 2)))).unwrap();
        assert_eq!(ds.labels, vec![0, 1, 0]);
        assert_eq!(ds.image_shape(), [3, 2, 2]);
        let err = load(dir.path(), "toy", &rgb_options(None, None)).unwrap_err().to_string();
        assert!(err.contains("b/0.jpg") && err.contains("5x6"), "{err}");
    }

    #[test]
    fn sizes_are_checked_against_the_image_limit_and_the_data_set_budget() {
        let root = Path::new("pics");
        assert!(check_budget(root, 50_000, [3, 32, 32], 2).is_ok());
        let err = check_budget(root, 100_000, [3, 256, 256], 0).unwrap_err().to_string();
        assert!(err.contains("pics: 100000 images of 3x256x256 need 91.6 GiB in memory, over the 8 GiB"), "{err}");
        let err = check_budget(root, usize::MAX, [3, 4, 4], 0).unwrap_err().to_string();
        assert!(err.contains("more than 16 EiB"), "{err}");
        let err = check_budget(root, 1, [3, 20_000, 20_000], 0).unwrap_err().to_string();
        assert!(err.contains("one image of 3x20000x20000 is over the 536870912 bytes"), "{err}");
    }

    #[test]
    fn unreadable_images_and_empty_roots_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "toy", &rgb_options(None, None))
            .unwrap_err()
            .to_string()
            .contains("no class folders"));
        write_png(&dir.path().join("a/0.png"), 2, 2, 0);
        std::fs::write(dir.path().join("a/1.png"), b"not a png").unwrap();
        let err = load(dir.path(), "toy", &rgb_options(None, None)).unwrap_err().to_string();
        assert!(err.contains("a/1.png") && err.contains("decode"), "{err}");
    }
}
