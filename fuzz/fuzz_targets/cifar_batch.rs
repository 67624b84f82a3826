//! CIFAR-10 binary batches: any bytes give whole records or an error that appends nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let (mut labels, mut pixels) = (Vec::new(), Vec::new());
    match ferrograd_train::data::cifar::parse_batch(Path::new("fuzz.bin"), data, &mut labels, &mut pixels) {
        Ok(()) => assert_eq!(pixels.len(), labels.len() * 3072),
        Err(_) => assert!(labels.is_empty() && pixels.is_empty()),
    }
});
