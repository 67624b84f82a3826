//! The character corpus: any bytes give a corpus whose tokens decode back to the text, or an error.
#![no_main]

use ferrograd_train::data::text::CharCorpus;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CharCorpus::from_bytes(Path::new("fuzz.txt"), data, 0.1) {
        let text = std::str::from_utf8(data).unwrap();
        assert_eq!(c.decode(&c.train) + &c.decode(&c.val), text);
        assert_eq!(c.encode(text).unwrap().len(), c.train.len() + c.val.len());
    }
});
