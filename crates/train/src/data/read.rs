//! Reading whole data files, gunzipping those that start with the gzip magic bytes.

use crate::error::{Result, TrainError};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The contents of `path`, decompressed if it is gzip (whatever its name).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| TrainError::format(path, format!("corrupt gzip data: {e}")))?;
    Ok(out)
}

/// The first existing file among `dir/name` and `dir/name.gz`.
pub fn find_plain_or_gz(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.bin");
        std::fs::write(&plain, b"hello").unwrap();
        let gz = dir.path().join("b.bin.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"world").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_maybe_gz(&plain).unwrap(), b"hello");
        assert_eq!(read_maybe_gz(&gz).unwrap(), b"world");
        assert_eq!(find_plain_or_gz(dir.path(), "b.bin"), Some(gz));
        assert_eq!(find_plain_or_gz(dir.path(), "c.bin"), None);
    }

    #[test]
    fn truncated_gzip_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("t.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&[7u8; 10000]).unwrap();
        let bytes = enc.finish().unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_maybe_gz(&gz).unwrap_err().to_string();
        assert!(err.contains("t.gz") && err.contains("gzip"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let err = read_maybe_gz(Path::new("/nonexistent/x.idx")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/x.idx"), "{err}");
    }
}
