//! IDX files (MNIST's format) of 1 or 3 dimensions: any bytes give an array or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    for ndims in [1, 3] {
        if let Ok(a) = ferrograd_train::data::idx::parse_idx(Path::new("fuzz.idx"), data, ndims) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }
});
