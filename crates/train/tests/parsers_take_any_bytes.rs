//! Every parser of user files against arbitrary bytes and against mutations of a valid file
//! (the fuzz targets' seeds, `fuzz/seeds/`): each gives a value or an error, never a panic.
//! The fuzz targets under `fuzz/` explore the same parsers far longer, guided by coverage.

use ferrograd_device::Device;
use ferrograd_graph::nn::{Linear, Module};
use ferrograd_train::checkpoint;
use ferrograd_train::data::text::CharCorpus;
use ferrograd_train::data::{cifar, idx, image_folder};
use ferrograd_train::metrics::{parse_metrics, CSV_HEADER};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn seeds(target: &str) -> Vec<Vec<u8>> {
    files_in("seeds", target)
}

/// The files of `fuzz/<kind>/<target>/`, in name order.
fn files_in(kind: &str, target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Arbitrary bytes, or a seed with a few bytes overwritten and its end cut at some point.
fn inputs(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    let mutated = (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(s, edits, cut)| {
            let mut bytes = seeds[s].clone();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..512), mutated]
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx(bytes in inputs("idx")) {
        for ndims in [1, 3] {
            if let Ok(a) = idx::parse_idx(Path::new("p.idx"), &bytes, ndims) {
                prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
        }
    }

    #[test]
    fn cifar_batch(bytes in inputs("cifar_batch")) {
        let (mut labels, mut pixels) = (Vec::new(), Vec::new());
        match cifar::parse_batch(Path::new("p.bin"), &bytes, &mut labels, &mut pixels) {
            Ok(()) => prop_assert_eq!(pixels.len(), labels.len() * 3072),
            Err(_) => prop_assert!(labels.is_empty() && pixels.is_empty()),
        }
    }

    #[test]
    fn image(bytes in inputs("image")) {
        let Some((&pick, data)) = bytes.split_first() else { return Ok(()) };
        let path = Path::new(if pick & 1 == 0 { "p.png" } else { "p.jpg" });
        let (channels, size) = if pick & 2 == 0 { (1, (8, 8)) } else { (3, (5, 7)) };
        let mut dst = vec![0u8; channels * size.0 * size.1];
        let _ = image_folder::decode_image(path, data, channels, size, pick & 4 != 0, &mut dst);
    }

    #[test]
    fn text_corpus(bytes in inputs("text_corpus")) {
        if let Ok(c) = CharCorpus::from_bytes(Path::new("p.txt"), &bytes, 0.1) {
            let text = std::str::from_utf8(&bytes).unwrap();
            prop_assert_eq!(c.decode(&c.train) + &c.decode(&c.val), text);
        }
    }

    #[test]
    fn checkpoint_and_state_dict(bytes in inputs("checkpoint")) {
        if let Ok(ck) = checkpoint::parse(Path::new("p.safetensors"), &bytes, &Device::Cpu) {
            let model = Linear::new(&Device::Cpu, 3, 2, true).unwrap();
            let before: Vec<Vec<f64>> = model.state_dict().iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect();
            if model.load_state_dict(&ck.arrays, false).is_err() {
                let after: Vec<Vec<f64>> = model.state_dict().iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect();
                prop_assert_eq!(before, after);
            }
        }
    }

    #[test]
    fn metrics_csv(bytes in inputs("metrics_csv")) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_metrics(Path::new("metrics.csv"), &text);
        let _ = parse_metrics(Path::new("metrics.csv"), &format!("{CSV_HEADER}\n{text}"));
    }
}

#[test]
fn the_seeds_are_valid_files() {
    // mutations of a valid file reach past the first check only if the seeds parse
    assert!(idx::parse_idx(Path::new("s"), &seeds("idx")[1], 1).is_ok());
    let (mut l, mut p) = (Vec::new(), Vec::new());
    assert!(cifar::parse_batch(Path::new("s"), &seeds("cifar_batch")[0], &mut l, &mut p).is_ok());
    assert!(checkpoint::parse(Path::new("s"), &seeds("checkpoint")[0], &Device::Cpu).is_ok());
    assert_eq!(parse_metrics(Path::new("s"), std::str::from_utf8(&seeds("metrics_csv")[0]).unwrap()).unwrap().len(), 2);
    let image = &seeds("image")[2]; // gray8.png.seed, picked as an 8x8 grey PNG
    assert_eq!(image[0], 0);
    assert!(image_folder::decode_image(Path::new("s.png"), &image[1..], 1, (8, 8), false, &mut [0; 64]).is_ok());
}

/// Inputs the fuzz targets found slow or failing, replayed once each (`fuzz/regressions/`).
#[test]
fn fuzz_regressions_decode_or_fail_cleanly() {
    // a JPEG declaring 2304x6144, shrunk to 5x7: a triangle filter alone took seconds
    for bytes in files_in("regressions", "image") {
        let mut dst = [0u8; 3 * 5 * 7];
        let _ = image_folder::decode_image(Path::new("r.jpg"), &bytes[1..], 3, (5, 7), true, &mut dst);
    }
}
