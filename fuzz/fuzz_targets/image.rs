//! Image-folder images: PNG or JPEG (the first byte picks), decoded as an image folder does,
//! both at a fixed size and resized.
#![no_main]

use ferrograd_train::data::image_folder::decode_image;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let path = Path::new(if pick & 1 == 0 { "fuzz.png" } else { "fuzz.jpg" });
    let (channels, size) = if pick & 2 == 0 { (1, (8, 8)) } else { (3, (5, 7)) };
    let mut dst = vec![0u8; channels * size.0 * size.1];
    let _ = decode_image(path, bytes, channels, size, pick & 4 != 0, &mut dst);
});
