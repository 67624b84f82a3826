//! Each bad input of issue #13 through the binary: it exits with status 1 (an error, not an
//! abort or a panic), the message names what was wrong and what to do, and nothing on disk
//! changes.

mod common;

use common::{ferrograd, snapshot, text, write_synthetic_mnist};
use ferrograd_device::{Array, DType, Device};
use ferrograd_train::checkpoint::{self, CheckpointMeta};
use ferrograd_train::data::idx::encode_idx;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `args` in `cwd` and checks that it fails cleanly, says each of `expected`, and leaves
/// `cwd` as it was.
fn fails_cleanly(args: &[&str], cwd: &Path, expected: &[&str]) {
    let before = snapshot(cwd);
    let out = ferrograd(args, cwd);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?} did not fail with an error:\n{said}");
    assert!(!said.contains("panicked"), "{args:?} panicked:\n{said}");
    for e in expected {
        assert!(said.contains(e), "{args:?}: the message does not say {e:?}:\n{said}");
    }
    assert_eq!(snapshot(cwd), before, "{args:?} changed files in {}", cwd.display());
}

/// A folder with a synthetic MNIST in `mnist/` and an earlier run's output in `run/`.
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("mnist")).unwrap();
    write_synthetic_mnist(&tmp.path().join("mnist"), 64, 32);
    std::fs::create_dir_all(tmp.path().join("run")).unwrap();
    std::fs::write(tmp.path().join("run/metrics.csv"), "an earlier run's metrics").unwrap();
    tmp
}

#[test]
fn numeric_flags_out_of_range_name_the_flag_and_the_range() {
    let tmp = workspace();
    let train = ["train", "--data-dir", "mnist", "--out", "run"];
    for (flag, value, range) in [
        ("--lr", "nan", "--lr NaN is out of range: it must be a finite number >= 0"),
        ("--lr", "inf", "--lr inf is out of range: it must be a finite number >= 0"),
        ("--lr", "-1", "--lr -1 is out of range: it must be a finite number >= 0"),
        ("--label-smoothing", "2", "--label-smoothing 2 is out of range: it must be in [0, 1)"),
        ("--momentum", "nan", "--momentum NaN is out of range: it must be in [0, 1)"),
        ("--clip-grad-norm", "0", "--clip-grad-norm 0 is out of range: it must be a finite number > 0"),
        ("--epochs", "0", "--epochs 0 is out of range: it must be at least 1"),
        ("--limit", "0", "--limit 0 is out of range: it must be at least 1"),
    ] {
        fails_cleanly(&[&train[..], &[flag, value]].concat(), tmp.path(), &[range]);
    }
    fails_cleanly(&["train", "--device", "tpu"], tmp.path(), &["unknown device \"tpu\"", "gpu:NAME", "cpu"]);
    let out = ferrograd(&["train", "--device", "tpu"], tmp.path());
    assert!(!text(&out).contains("Vulkan driver"), "{}", text(&out));
    // refused by the argument parser (its usage error, status 2) before anything runs
    let out = ferrograd(&["train", "--precision", "half"], tmp.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("\"half\" is not a precision: use f32 or mixed"), "{}", text(&out));
}

#[test]
fn empty_and_forged_idx_files_are_errors_naming_the_file() {
    let tmp = workspace();
    let data = tmp.path().join("mnist");
    std::fs::write(data.join("train-images-idx3-ubyte"), encode_idx(&[0, 28, 28], &[])).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte"), encode_idx(&[0], &[])).unwrap();
    fails_cleanly(
        &["train", "--data-dir", "mnist", "--out", "run"],
        tmp.path(),
        &["train-images-idx3-ubyte", "holds 0 images"],
    );
    // dimensions whose product overflows (a panic in builds with overflow checks, as this one)
    std::fs::write(data.join("train-images-idx3-ubyte"), encode_idx(&[u32::MAX as usize; 3], &[0; 64])).unwrap();
    fails_cleanly(
        &["train", "--data-dir", "mnist", "--out", "run"],
        tmp.path(),
        &["train-images-idx3-ubyte", "more than"],
    );
}

/// A PNG of 57 bytes whose header claims `side`x`side` RGB pixels and whose data is empty.
fn forged_png(side: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        [&(data.len() as u32).to_be_bytes()[..], kind, data, &crc.sum().to_be_bytes()].concat()
    };
    let ihdr = [&side.to_be_bytes()[..], &side.to_be_bytes(), &[8, 2, 0, 0, 0]].concat();
    [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &[]), &chunk(b"IEND", &[])].concat()
}

/// A real 32x32 JPEG marked progressive (SOF2) and claiming `side`x`side`.
fn forged_progressive_jpeg(side: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
    jpeg[sof + 1] = 0xC2;
    // after the marker: length (2), precision (1), height (2), width (2)
    jpeg[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    jpeg
}

fn write_png(path: &Path, side: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(side, side, |x, y| image::Rgb([x as u8, y as u8, 7])).save(path).unwrap();
}

#[test]
fn forged_image_sizes_are_refused_before_allocating_and_quickly() {
    let tmp = workspace();
    let folder = ["train", "--dataset", "folder", "--data-dir", "pics", "--model", "resnet18", "--out", "run"];
    for split in ["train", "test"] {
        write_png(&tmp.path().join("pics").join(split).join("cat/b.png"), 8);
    }
    // a header claiming 2^31-1 squared used to abort with "memory allocation failed"
    std::fs::write(tmp.path().join("pics/train/cat/a.png"), forged_png(i32::MAX as u32)).unwrap();
    fails_cleanly(&folder, tmp.path(), &["pics/train/cat/a.png", "the header declares", "sides of 1..=16384 load"]);
    std::fs::write(tmp.path().join("pics/train/cat/a.png"), forged_png(20_000)).unwrap();
    fails_cleanly(&folder, tmp.path(), &["pics/train/cat/a.png", "the header declares 20000x20000"]);
    // within the side limit, but one image would exceed the image crate's allocation limit
    std::fs::write(tmp.path().join("pics/train/cat/a.png"), forged_png(16_000)).unwrap();
    fails_cleanly(&folder, tmp.path(), &["pics/train", "one image of 3x16000x16000"]);
    // within every limit, but the header's promise is not kept: an error, not N such buffers
    std::fs::write(tmp.path().join("pics/train/cat/a.png"), forged_png(9_000)).unwrap();
    fails_cleanly(&folder, tmp.path(), &["pics/train/cat/a.png", "cannot decode image"]);
    // a small progressive JPEG claiming a large size is refused without being decoded
    std::fs::remove_file(tmp.path().join("pics/train/cat/a.png")).unwrap();
    std::fs::write(tmp.path().join("pics/train/cat/c.jpg"), forged_progressive_jpeg(12_000)).unwrap();
    let start = Instant::now();
    fails_cleanly(
        &folder,
        tmp.path(),
        &["pics/train/cat/c.jpg", "image is 12000x12000, the folder's first image is 8x8"],
    );
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[test]
fn image_folders_whose_splits_have_different_classes_are_an_error() {
    let tmp = workspace();
    for (split, class) in [("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "emu")] {
        write_png(&tmp.path().join("pics").join(split).join(class).join("0.png"), 8);
    }
    let folder = ["train", "--dataset", "folder", "--data-dir", "pics", "--model", "resnet18", "--out", "run"];
    fails_cleanly(
        &folder,
        tmp.path(),
        &["train/ and test/ must hold the same class folders", "[\"dog\"]", "[\"emu\"]"],
    );
}

/// Trains one short epoch into `run/`, returning the checkpoint's path.
fn trained(tmp: &Path) -> std::path::PathBuf {
    let out = ferrograd(&["train", "--data-dir", "mnist", "--epochs", "1", "--out", "run", "--overwrite"], tmp);
    assert!(out.status.success(), "{}", text(&out));
    tmp.join("run/checkpoint.safetensors")
}

/// Rewrites the checkpoint at `path` with `edit` applied to its arrays.
fn rewrite(path: &Path, edit: impl Fn(&mut Vec<(String, Array)>)) {
    let mut ck = checkpoint::load(path, &Device::Cpu).unwrap();
    edit(&mut ck.arrays);
    checkpoint::save(path, &ck.arrays, &ck.meta).unwrap();
}

#[test]
fn checkpoints_with_wrong_dtypes_nan_weights_or_no_optimizer_state_are_refused() {
    let tmp = workspace();
    let ckpt = trained(tmp.path());
    let good = std::fs::read(&ckpt).unwrap();
    let resume = ["train", "--data-dir", "mnist", "--epochs", "2", "--out", "run", "--resume"];
    let eval = ["eval", "--checkpoint", "run/checkpoint.safetensors", "--data-dir", "mnist"];

    rewrite(&ckpt, |arrays| {
        let (_, w) = arrays.iter_mut().find(|(n, _)| n == "conv1.weight").unwrap();
        *w = Array::from_u32(&Device::Cpu, &vec![7; w.numel()], w.shape()).unwrap();
    });
    for args in [&resume[..], &eval[..]] {
        fails_cleanly(args, tmp.path(), &["conv1.weight: dtype U32 in the state, F32 in the module"]);
    }

    std::fs::write(&ckpt, &good).unwrap();
    rewrite(&ckpt, |arrays| {
        for (_, a) in arrays.iter_mut().filter(|(n, a)| !n.starts_with("optimizer.") && a.dtype() == DType::F32) {
            *a = Array::full(&Device::Cpu, a.shape(), f32::NAN).unwrap();
        }
    });
    for args in [&resume[..], &eval[..]] {
        fails_cleanly(args, tmp.path(), &["conv1.weight", "values are NaN or infinite"]);
    }

    std::fs::write(&ckpt, &good).unwrap();
    rewrite(&ckpt, |arrays| arrays.retain(|(n, _)| !n.starts_with("optimizer.")));
    fails_cleanly(&resume, tmp.path(), &["holds no optimizer state", "--reset-optimizer"]);
    let out = ferrograd(&[&resume[..], &["--reset-optimizer"]].concat(), tmp.path());
    assert!(out.status.success() && text(&out).contains("resumed"), "{}", text(&out));
}

#[test]
fn a_char_lm_checkpoint_given_to_eval_points_to_sample() {
    let tmp = workspace();
    let meta = CheckpointMeta {
        model: "char-lstm".into(),
        dataset: "shakespeare".into(),
        extra: [("vocab".to_string(), "ab".to_string())].into(),
        ..Default::default()
    };
    let w = Array::from_f32(&Device::Cpu, &[0.5; 4], &[2, 2]).unwrap();
    checkpoint::save(&tmp.path().join("lm.safetensors"), &[("embed.weight".into(), w)], &meta).unwrap();
    fails_cleanly(
        &["eval", "--checkpoint", "lm.safetensors"],
        tmp.path(),
        &["character language model", "ferrograd sample"],
    );
}

#[test]
fn a_training_batch_too_large_for_the_device_says_which_size_fits_before_any_work() {
    let tmp = workspace();
    // convolutions cut their im2col columns into chunks that fit, so what does not fit is an
    // activation: LeNet-5's first, [8000, 6, 28, 28] f32, is 150 MB against lavapipe's 128 MiB
    write_synthetic_mnist(&tmp.path().join("mnist"), 8000, 32);
    fails_cleanly(
        &["train", "--data-dir", "mnist", "--batch-size", "8000", "--out", "run"],
        tmp.path(),
        &[
            "a training batch of 8000 does not fit the device",
            "[8000, 6, 784]",
            "bytes for the array",
            "limit",
            "a batch size of",
        ],
    );
}
