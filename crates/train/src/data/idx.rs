//! The IDX format of MNIST and Fashion-MNIST: a 4-byte magic (two zero bytes, a type byte —
//! 0x08 for unsigned bytes — and the number of dimensions), one big-endian u32 per
//! dimension, then the data.

use crate::error::{Result, TrainError};
use std::path::Path;

const UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses `bytes` (the contents of `path`) as an IDX array of unsigned bytes with `ndims` dimensions.
pub fn parse_idx(path: &Path, bytes: &[u8], ndims: usize) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(TrainError::format(path, format!("{} bytes is too short for an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected = ((UBYTE as u32) << 8) | ndims as u32;
    if magic != expected {
        return Err(TrainError::format(
            path,
            format!("IDX magic number {magic:#010x}, expected {expected:#010x} (unsigned bytes, {ndims} dimensions)"),
        ));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(TrainError::format(path, format!("{} bytes is too short for a {ndims}-d IDX header", bytes.len())));
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let data = &bytes[header..];
    // checked: forged dimensions may overflow when multiplied
    let expected_len = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if expected_len != Some(data.len()) {
        let need = expected_len.map_or("more than usize::MAX".to_string(), |n| n.to_string());
        return Err(TrainError::format(
            path,
            format!("dimensions {dims:?} need {need} data bytes, the file has {}", data.len()),
        ));
    }
    Ok(IdxArray { dims, data: data.to_vec() })
}

/// Writes an IDX array of unsigned bytes (used by tests and tools that make small data sets).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UBYTE, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_encode() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode_idx(&[2, 3, 4], &data);
        let a = parse_idx(Path::new("x"), &bytes, 3).unwrap();
        assert_eq!(a.dims, vec![2, 3, 4]);
        assert_eq!(a.data, data);
    }

    #[test]
    fn wrong_magic_wrong_rank_and_wrong_length_are_errors() {
        let p = Path::new("imgs.idx");
        let mut bad = encode_idx(&[2], &[1, 2]);
        bad[2] = 0x0D; // float data
        assert!(parse_idx(p, &bad, 1).unwrap_err().to_string().contains("magic"));
        let labels = encode_idx(&[2], &[1, 2]);
        assert!(parse_idx(p, &labels, 3).unwrap_err().to_string().contains("expected 0x00000803"));
        let short = encode_idx(&[2, 2, 2], &[0; 7]);
        let err = parse_idx(p, &short, 3).unwrap_err().to_string();
        assert!(err.contains("imgs.idx") && err.contains("need 8 data bytes") && err.contains("has 7"), "{err}");
        assert!(parse_idx(p, &[0, 0], 1).unwrap_err().to_string().contains("too short"));
        assert!(parse_idx(p, &[0, 0, 8, 3, 0, 0], 3).unwrap_err().to_string().contains("too short"));
    }

    #[test]
    fn dimensions_whose_product_overflows_are_an_error() {
        let p = Path::new("forged.idx");
        let forged = encode_idx(&[u32::MAX as usize; 3], &[0; 16]);
        let err = parse_idx(p, &forged, 3).unwrap_err().to_string();
        assert!(err.contains("forged.idx") && err.contains("has 16"), "{err}");
        // a product that fits a u64 but not the data is refused the same way
        let big = encode_idx(&[60_000, 60_000, 60_000], &[0; 4]);
        assert!(parse_idx(p, &big, 3).unwrap_err().to_string().contains("need 216000000000000 data bytes"));
    }
}
