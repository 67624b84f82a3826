//! metrics.csv, as `--resume` and the plots read it: any text gives rows or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ferrograd_train::metrics::parse_metrics(Path::new("metrics.csv"), &text);
    // a valid header followed by the input reaches the row parser on every run
    let with_header = format!("{}\n{text}", ferrograd_train::metrics::CSV_HEADER);
    let _ = ferrograd_train::metrics::parse_metrics(Path::new("metrics.csv"), &with_header);
});
