//! A character-level text corpus: the vocabulary is the sorted set of characters in the
//! text, the tokens are indices into it, and the split is contiguous (the first part trains,
//! the rest validates), as in char-rnn and nanoGPT.

use super::read::read_maybe_gz;
use super::Split;
use crate::error::{Result, TrainError};
use rand::{Rng, RngExt};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct CharCorpus {
    /// Characters in token order.
    pub vocab: Vec<char>,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

impl CharCorpus {
    /// Builds the vocabulary from `text` and keeps the last `val_fraction` of it for validation.
    pub fn from_text(text: &str, val_fraction: f64) -> Result<CharCorpus> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(TrainError::Config(format!("validation fraction {val_fraction} is not in [0, 1)")));
        }
        let vocab: Vec<char> = text.chars().collect::<BTreeSet<_>>().into_iter().collect();
        // every character is in the vocabulary, so its sorted position is its token
        let tokens: Vec<u32> = text.chars().map(|c| vocab.partition_point(|&v| v < c) as u32).collect();
        let n_train = tokens.len() - (tokens.len() as f64 * val_fraction).round() as usize;
        Ok(CharCorpus { vocab, val: tokens[n_train..].to_vec(), train: tokens[..n_train].to_vec() })
    }

    /// Loads a UTF-8 text file, plain or gzipped.
    pub fn load(path: &Path, val_fraction: f64) -> Result<CharCorpus> {
        CharCorpus::from_bytes(path, &read_maybe_gz(path)?, val_fraction)
    }

    /// A corpus from `bytes`, the (decompressed) contents of `path`, which must be UTF-8 text.
    pub fn from_bytes(path: &Path, bytes: &[u8], val_fraction: f64) -> Result<CharCorpus> {
        let text = std::str::from_utf8(bytes).map_err(|e| TrainError::format(path, format!("not UTF-8 text: {e}")))?;
        if text.is_empty() {
            return Err(TrainError::format(path, "the text is empty"));
        }
        CharCorpus::from_text(text, val_fraction)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn tokens(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.val,
        }
    }

    /// Tokens of `text`; a character outside the vocabulary is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.chars()
            .map(|c| {
                self.vocab
                    .binary_search(&c)
                    .map(|i| i as u32)
                    .map_err(|_| TrainError::Config(format!("character {c:?} is not in the corpus vocabulary")))
            })
            .collect()
    }

    /// Text of `tokens`; a token outside the vocabulary becomes U+FFFD.
    pub fn decode(&self, tokens: &[u32]) -> String {
        tokens.iter().map(|&t| self.vocab.get(t as usize).copied().unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
    }

    /// `batch` random windows of `seq_len` tokens: inputs `[batch, seq_len]` and the targets,
    /// the same windows shifted by one token.
    pub fn sample_batch(
        &self,
        split: Split,
        batch: usize,
        seq_len: usize,
        rng: &mut impl Rng,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let tokens = self.tokens(split);
        if seq_len == 0 || tokens.len() <= seq_len {
            return Err(TrainError::Config(format!(
                "the {} split has {} tokens, too few for windows of {seq_len} (+1 target)",
                split.name(),
                tokens.len()
            )));
        }
        let mut inputs = Vec::with_capacity(batch * seq_len);
        let mut targets = Vec::with_capacity(batch * seq_len);
        for _ in 0..batch {
            let start = rng.random_range(0..tokens.len() - seq_len);
            inputs.extend_from_slice(&tokens[start..start + seq_len]);
            targets.extend_from_slice(&tokens[start + 1..start + seq_len + 1]);
        }
        Ok((inputs, targets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn vocab_is_sorted_and_encoding_round_trips() {
        let c = CharCorpus::from_text("hello world", 0.0).unwrap();
        assert_eq!(c.vocab, vec![' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        assert_eq!(c.encode("hold").unwrap(), vec![3, 5, 4, 1]);
        assert_eq!(c.decode(&c.train), "hello world");
        assert!(c.encode("hex").unwrap_err().to_string().contains("'x'"));
        assert_eq!(c.decode(&[99]), "\u{FFFD}");
    }

    #[test]
    fn split_is_contiguous() {
        let c = CharCorpus::from_text("abcdefghij", 0.2).unwrap();
        assert_eq!(c.decode(&c.train), "abcdefgh");
        assert_eq!(c.decode(&c.val), "ij");
        assert!(CharCorpus::from_text("ab", 1.0).is_err());
    }

    #[test]
    fn batches_are_windows_and_shifted_targets() {
        let text: String = (0..200).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let c = CharCorpus::from_text(&text, 0.1).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (x, y) = c.sample_batch(Split::Train, 4, 8, &mut rng).unwrap();
        assert_eq!((x.len(), y.len()), (32, 32));
        for b in 0..4 {
            for t in 0..8 {
                assert_eq!(y[b * 8 + t], (x[b * 8 + t] + 1) % 26);
            }
        }
        assert!(c.sample_batch(Split::Test, 1, 20, &mut rng).is_err());
    }

    #[test]
    fn loads_gzip_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.txt");
        std::fs::write(&p, [0xff, 0xfe, 0x41]).unwrap();
        let err = CharCorpus::load(&p, 0.1).unwrap_err().to_string();
        assert!(err.contains("bad.txt") && err.contains("UTF-8"), "{err}");
        let path = crate::data::locate::find_tiny_shakespeare().expect("bundled Tiny Shakespeare");
        let c = CharCorpus::load(&path, 0.1).unwrap();
        assert_eq!(c.vocab_size(), 65);
        assert_eq!(c.train.len() + c.val.len(), 1_115_394);
    }
}
