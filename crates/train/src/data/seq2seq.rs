//! Synthetic sequence-to-sequence tasks on digit strings, generated from a seed: copy,
//! reverse, sort, and addition (`"123+45"` -> `"168"`). Sequences are token ids of
//! [`VOCAB`]; batches pad with PAD and frame targets with BOS/EOS for teacher forcing.

use crate::error::{Result, TrainError};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::RangeInclusive;

pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
/// Token of digit `d` is `DIGIT0 + d`.
pub const DIGIT0: u32 = 3;
pub const PLUS: u32 = 13;
pub const VOCAB_SIZE: usize = 14;
/// How each token prints (PAD prints as `_`, BOS as `^`, EOS as `$`).
pub const VOCAB: [char; VOCAB_SIZE] = ['_', '^', '$', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+'];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Copy,
    Reverse,
    Sort,
    /// two numbers of 1..=len digits each, summed
    Addition,
}

impl Task {
    pub const NAMES: [&'static str; 4] = ["copy", "reverse", "sort", "addition"];

    pub fn parse(name: &str) -> Result<Task> {
        match name {
            "copy" => Ok(Task::Copy),
            "reverse" => Ok(Task::Reverse),
            "sort" => Ok(Task::Sort),
            "addition" | "add" => Ok(Task::Addition),
            _ => Err(TrainError::Config(format!("unknown task {name:?}; known: {}", Self::NAMES.join(", ")))),
        }
    }

    /// `n` examples with source lengths (operand lengths for addition) drawn from `lengths`.
    pub fn generate(self, n: usize, lengths: RangeInclusive<usize>, seed: u64) -> Result<Vec<Example>> {
        if *lengths.start() == 0 || lengths.is_empty() {
            return Err(TrainError::Config(format!("sequence lengths {lengths:?} must be a non-empty range from 1")));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok((0..n).map(|_| self.example(rng.random_range(lengths.clone()), &mut rng)).collect())
    }

    fn example(self, len: usize, rng: &mut ChaCha8Rng) -> Example {
        let mut digits = |len: usize| -> Vec<u32> { (0..len).map(|_| rng.random_range(0..10)).collect() };
        let tokens = |d: &[u32]| -> Vec<u32> { d.iter().map(|&x| DIGIT0 + x).collect() };
        let (src, tgt) = match self {
            Task::Copy => {
                let s = digits(len);
                (tokens(&s), tokens(&s))
            }
            Task::Reverse => {
                let mut s = digits(len);
                let src = tokens(&s);
                s.reverse();
                (src, tokens(&s))
            }
            Task::Sort => {
                let mut s = digits(len);
                let src = tokens(&s);
                s.sort_unstable();
                (src, tokens(&s))
            }
            Task::Addition => {
                let a = number(digits(len));
                let b = number(digits(len));
                let src = [tokens(&a), vec![PLUS], tokens(&b)].concat();
                (src, tokens(&add(&a, &b)))
            }
        };
        Example { src, tgt }
    }
}

/// Drops leading zeros (keeping one digit), so operands read as numbers.
fn number(mut d: Vec<u32>) -> Vec<u32> {
    let first = d.iter().position(|&x| x != 0).unwrap_or(d.len() - 1);
    d.drain(..first);
    d
}

/// Decimal sum of two digit strings, most significant digit first.
fn add(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut out, mut carry) = (Vec::new(), 0);
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 || j > 0 || carry > 0 {
        let mut s = carry;
        if i > 0 {
            i -= 1;
            s += a[i];
        }
        if j > 0 {
            j -= 1;
            s += b[j];
        }
        out.push(s % 10);
        carry = s / 10;
    }
    out.reverse();
    out
}

/// One source/target pair, without special tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

/// A padded batch, row-major `[batch, len]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seq2SeqBatch {
    pub batch: usize,
    pub src_len: usize,
    /// length of `tgt_in` and `tgt_out` rows: the longest target + 1
    pub tgt_len: usize,
    /// sources padded with PAD
    pub src: Vec<u32>,
    /// unpadded source lengths
    pub src_lengths: Vec<usize>,
    /// decoder inputs: BOS, target, PAD...
    pub tgt_in: Vec<u32>,
    /// decoder targets: target, EOS, PAD... (PAD positions are masked out of the loss)
    pub tgt_out: Vec<u32>,
}

impl Seq2SeqBatch {
    pub fn new(examples: &[Example]) -> Seq2SeqBatch {
        let src_len = examples.iter().map(|e| e.src.len()).max().unwrap_or(0);
        let tgt_len = examples.iter().map(|e| e.tgt.len() + 1).max().unwrap_or(0);
        let pad_to = |v: &mut Vec<u32>, len: usize| v.resize(len, PAD);
        let (mut src, mut tgt_in, mut tgt_out) = (Vec::new(), Vec::new(), Vec::new());
        for e in examples {
            let mut s = e.src.clone();
            pad_to(&mut s, src_len);
            src.extend(s);
            let mut i: Vec<u32> = std::iter::once(BOS).chain(e.tgt.iter().copied()).collect();
            pad_to(&mut i, tgt_len);
            tgt_in.extend(i);
            let mut o: Vec<u32> = e.tgt.iter().copied().chain(std::iter::once(EOS)).collect();
            pad_to(&mut o, tgt_len);
            tgt_out.extend(o);
        }
        Seq2SeqBatch {
            batch: examples.len(),
            src_len,
            tgt_len,
            src,
            src_lengths: examples.iter().map(|e| e.src.len()).collect(),
            tgt_in,
            tgt_out,
        }
    }
}

/// Prints tokens (up to and without the first EOS, PADs dropped); unknown ids print as `?`.
pub fn decode(tokens: &[u32]) -> String {
    tokens
        .iter()
        .take_while(|&&t| t != EOS)
        .filter(|&&t| t != PAD)
        .map(|&t| VOCAB.get(t as usize).copied().unwrap_or('?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_number(tokens: &[u32]) -> u64 {
        decode(tokens).parse().unwrap()
    }

    #[test]
    fn tasks_compute_what_they_say() {
        for task in [Task::Copy, Task::Reverse, Task::Sort] {
            for e in task.generate(50, 1..=9, 7).unwrap() {
                assert!((1..=9).contains(&e.src.len()));
                let mut expected = e.src.clone();
                match task {
                    Task::Reverse => expected.reverse(),
                    Task::Sort => expected.sort(),
                    _ => {}
                }
                assert_eq!(e.tgt, expected);
            }
        }
        for e in Task::Addition.generate(200, 1..=12, 9).unwrap() {
            let s = decode(&e.src);
            let (a, b) = s.split_once('+').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(as_number(&e.tgt), a + b, "{s}");
            assert!(!s.starts_with('0') || s.starts_with("0+"), "{s}");
        }
    }

    #[test]
    fn generation_is_seeded() {
        let a = Task::Sort.generate(20, 2..=6, 1).unwrap();
        assert_eq!(a, Task::Sort.generate(20, 2..=6, 1).unwrap());
        assert_ne!(a, Task::Sort.generate(20, 2..=6, 2).unwrap());
        assert!(Task::Copy.generate(1, 0..=3, 1).is_err());
        assert!(Task::parse("multiply").unwrap_err().to_string().contains("reverse"));
    }

    #[test]
    fn batches_pad_and_frame_targets() {
        let ex = vec![Example { src: vec![3, 4, 5], tgt: vec![5, 4, 3] }, Example { src: vec![6], tgt: vec![6] }];
        let b = Seq2SeqBatch::new(&ex);
        assert_eq!((b.batch, b.src_len, b.tgt_len), (2, 3, 4));
        assert_eq!(b.src, vec![3, 4, 5, 6, PAD, PAD]);
        assert_eq!(b.src_lengths, vec![3, 1]);
        assert_eq!(b.tgt_in, vec![BOS, 5, 4, 3, BOS, 6, PAD, PAD]);
        assert_eq!(b.tgt_out, vec![5, 4, 3, EOS, 6, EOS, PAD, PAD]);
        assert_eq!(decode(&b.tgt_out[..4]), "210");
    }
}
