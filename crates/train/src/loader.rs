//! The data loader: a seeded shuffle per epoch, batching, augmentation, and preparation on a
//! background thread that keeps a few ready batches in a bounded channel so the GPU is not
//! starved. Batches are host-side (`Vec<f32>` images, `Vec<u32>` labels); the trainer uploads.
//!
//! Everything random is a function of (seed, epoch, position in the epoch), so an epoch started
//! at a later batch (`epoch_from`, for resuming) yields exactly the batches a full epoch would,
//! and a replica of a data-parallel job (`sharded`) reads exactly its part of them.

use crate::augment::Augmentation;
use crate::data::ImageDataset;
use crate::error::{Result, TrainError};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// Drop the last batch when it would be smaller than `batch_size`.
    pub drop_last: bool,
    pub augmentation: Augmentation,
    /// Ready batches kept ahead of the consumer (the channel bound).
    pub prefetch: usize,
}

impl LoaderConfig {
    /// Training defaults: shuffled, last partial batch kept, no augmentation, 3 batches ahead.
    pub fn train(batch_size: usize, seed: u64) -> LoaderConfig {
        LoaderConfig {
            batch_size,
            shuffle: true,
            seed,
            drop_last: false,
            augmentation: Augmentation::none(),
            prefetch: 3,
        }
    }

    /// Evaluation: in order, every example, no augmentation.
    pub fn eval(batch_size: usize) -> LoaderConfig {
        LoaderConfig { shuffle: false, ..LoaderConfig::train(batch_size, 0) }
    }
}

/// One batch, `images` laid out as `shape` = `[N, C, H, W]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// position of the batch in its epoch
    pub index: usize,
    pub images: Vec<f32>,
    pub shape: [usize; 4],
    pub labels: Vec<u32>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

pub struct DataLoader {
    dataset: Arc<ImageDataset>,
    config: LoaderConfig,
    shard: Option<Shard>,
}

/// Which part of every batch a replica of a data-parallel job reads: positions `rank`,
/// `rank + size`, ... of the batch (DistributedSampler's split: the global batch is the one a
/// single process would read, and the replicas' shards are disjoint and cover it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub size: usize,
}

impl DataLoader {
    pub fn new(dataset: Arc<ImageDataset>, config: LoaderConfig) -> Result<DataLoader> {
        if config.batch_size == 0 {
            return Err(TrainError::Config("batch size must be at least 1".into()));
        }
        if config.prefetch == 0 {
            return Err(TrainError::Config("prefetch must be at least 1 batch".into()));
        }
        if dataset.is_empty() {
            return Err(TrainError::Config(format!("the data set {} holds no examples", dataset.name)));
        }
        if config.augmentation.crop_pad > 0 && dataset.normalization.mean.len() != dataset.channels {
            return Err(TrainError::Config(format!(
                "{}: normalisation has {} channels, images {}",
                dataset.name,
                dataset.normalization.mean.len(),
                dataset.channels
            )));
        }
        Ok(DataLoader { dataset, config, shard: None })
    }

    pub fn dataset(&self) -> &ImageDataset {
        &self.dataset
    }

    /// The same data and settings in batches of `batch_size`.
    pub fn with_batch_size(&self, batch_size: usize) -> Result<DataLoader> {
        let loader = DataLoader::new(self.dataset.clone(), LoaderConfig { batch_size, ..self.config.clone() })?;
        Ok(DataLoader { shard: self.shard, ..loader })
    }

    /// This loader as replica `rank` of `size` reads it: the same batches (`batch_size` is the
    /// global batch), each cut to this replica's [`Shard`]. With `training`, every replica
    /// must get examples from every batch (a replica with none has no step to take), so a batch
    /// smaller than `size`, or a last batch that is, is refused with what to change; in
    /// evaluation a replica simply skips a batch it has nothing of.
    pub fn sharded(&self, rank: usize, size: usize, training: bool) -> Result<DataLoader> {
        if rank >= size {
            return Err(TrainError::Config(format!("rank {rank} of a job of {size} processes")));
        }
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        let last = if self.config.drop_last || n % b == 0 { b.min(n) } else { n % b };
        if training && size > 1 && last.min(b.min(n)) < size {
            return Err(TrainError::Config(format!(
                "a batch of {} examples cannot be split over {size} processes (batch size {b}, {n} examples); \
                 choose a batch size and a --limit that leave each process at least one example of every batch",
                last.min(b.min(n))
            )));
        }
        Ok(DataLoader { dataset: self.dataset.clone(), config: self.config.clone(), shard: Some(Shard { rank, size }) })
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The most examples one of this loader's batches holds on this replica.
    pub fn local_batch_size(&self) -> usize {
        let b = self.config.batch_size.min(self.dataset.len());
        self.shard.map_or(b, |s| b.saturating_sub(s.rank).div_ceil(s.size))
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Examples per epoch (fewer than the data set's when the last partial batch is dropped).
    pub fn examples_per_epoch(&self) -> usize {
        (self.batches_per_epoch() * self.config.batch_size).min(self.dataset.len())
    }

    /// The order in which epoch `epoch` visits the examples.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.config.shuffle {
            order.shuffle(&mut rng_for(self.config.seed, epoch, u64::MAX));
        }
        order
    }

    /// The batches of epoch `epoch`, prepared on a background thread.
    pub fn epoch(&self, epoch: usize) -> Result<Batches> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of epoch `epoch` from batch `first_batch` on (resuming mid-epoch).
    pub fn epoch_from(&self, epoch: usize, first_batch: usize) -> Result<Batches> {
        let order = self.order(epoch);
        let total = self.batches_per_epoch();
        let (tx, rx) = sync_channel(self.config.prefetch);
        let dataset = Arc::clone(&self.dataset);
        let config = self.config.clone();
        let shard = self.shard;
        let handle = std::thread::Builder::new()
            .name("ferrograd-loader".into())
            .spawn(move || {
                for index in first_batch..total {
                    let batch = make_batch(&dataset, &config, shard, &order, epoch, index);
                    if tx.send(batch).is_err() {
                        return; // the consumer stopped early
                    }
                }
            })
            .map_err(|e| TrainError::Config(format!("cannot start the loader thread: {e}")))?;
        Ok(Batches { rx: Some(rx), handle: Some(handle), remaining: total.saturating_sub(first_batch) })
    }
}

/// Batch `index` of an epoch whose example order is `order`, or this replica's shard of it.
fn make_batch(
    dataset: &ImageDataset,
    config: &LoaderConfig,
    shard: Option<Shard>,
    order: &[usize],
    epoch: usize,
    index: usize,
) -> Batch {
    let start = index * config.batch_size;
    let global = &order[start..(start + config.batch_size).min(order.len())];
    // (position in the epoch, example) of the examples this replica reads
    let picked: Vec<(usize, usize)> = match shard {
        Some(Shard { rank, size }) => (rank..global.len()).step_by(size).map(|p| (start + p, global[p])).collect(),
        None => global.iter().enumerate().map(|(p, &i)| (start + p, i)).collect(),
    };
    let ids: Vec<usize> = picked.iter().map(|&(_, i)| i).collect();
    let per = dataset.image_len();
    let shape = dataset.image_shape();
    let mut images = vec![0.0f32; ids.len() * per];
    if config.augmentation.is_identity() {
        for (&i, dst) in ids.iter().zip(images.chunks_exact_mut(per)) {
            dst.copy_from_slice(dataset.image(i));
        }
    } else {
        let fill: Vec<f32> = (0..dataset.channels).map(|c| dataset.normalization.apply(c, 0)).collect();
        // a generator per position in the epoch: an example's crop does not depend on which
        // replica reads it
        for (&(position, i), dst) in picked.iter().zip(images.chunks_exact_mut(per)) {
            let mut rng = rng_for(config.seed, epoch, position as u64);
            config.augmentation.apply(dataset.image(i), shape, &fill, &mut rng, dst);
        }
    }
    Batch {
        index,
        images,
        shape: [ids.len(), shape[0], shape[1], shape[2]],
        labels: ids.iter().map(|&i| dataset.labels[i]).collect(),
    }
}

/// An independent generator for each (seed, epoch, stream).
fn rng_for(seed: u64, epoch: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(stream);
    rng
}

/// The batches of one epoch; dropping it early stops the background thread.
pub struct Batches {
    rx: Option<Receiver<Batch>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.rx.as_ref().and_then(|rx| rx.recv().ok());
        self.remaining = if batch.is_some() { self.remaining - 1 } else { 0 };
        batch
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Batches {}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the channel first makes a blocked `send` fail, so the thread ends.
        drop(self.rx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{LoadOptions, Normalization};

    /// `n` one-channel 2x2 images whose four values are all the image's index.
    fn indexed_dataset(n: usize) -> Arc<ImageDataset> {
        Arc::new(ImageDataset {
            name: "idx".into(),
            images: (0..n * 4).map(|k| (k / 4) as f32).collect(),
            labels: (0..n as u32).map(|i| i % 7).collect(),
            channels: 1,
            height: 2,
            width: 2,
            classes: (0..7).map(|c| c.to_string()).collect(),
            normalization: Normalization::new(&[0.0], &[1.0]),
        })
    }

    fn ids(batch: &Batch) -> Vec<usize> {
        batch.images.chunks(4).map(|c| c[0] as usize).collect()
    }

    #[test]
    fn shuffled_epoch_visits_every_example_once_with_matching_labels() {
        let loader = DataLoader::new(indexed_dataset(23), LoaderConfig::train(5, 42)).unwrap();
        assert_eq!(loader.batches_per_epoch(), 5);
        let batches: Vec<Batch> = loader.epoch(0).unwrap().collect();
        assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), vec![5, 5, 5, 5, 3]);
        assert_eq!(batches[4].shape, [3, 1, 2, 2]);
        let mut seen: Vec<usize> = batches.iter().flat_map(ids).collect();
        assert_ne!(seen, (0..23).collect::<Vec<_>>(), "not shuffled");
        for b in &batches {
            assert_eq!(b.labels, ids(b).iter().map(|&i| (i % 7) as u32).collect::<Vec<_>>());
        }
        seen.sort();
        assert_eq!(seen, (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn order_depends_on_seed_and_epoch_only() {
        let a = DataLoader::new(indexed_dataset(50), LoaderConfig::train(8, 1)).unwrap();
        let b = DataLoader::new(indexed_dataset(50), LoaderConfig::train(8, 1)).unwrap();
        let c = DataLoader::new(indexed_dataset(50), LoaderConfig::train(8, 2)).unwrap();
        assert_eq!(a.order(3), b.order(3));
        assert_ne!(a.order(3), a.order(4));
        assert_ne!(a.order(3), c.order(3));
        let eval = DataLoader::new(indexed_dataset(50), LoaderConfig::eval(8)).unwrap();
        assert_eq!(eval.order(5), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_and_resume_mid_epoch() {
        let config = LoaderConfig { drop_last: true, augmentation: Augmentation::cifar(), ..LoaderConfig::train(4, 9) };
        let loader = DataLoader::new(indexed_dataset(18), config).unwrap();
        assert_eq!((loader.batches_per_epoch(), loader.examples_per_epoch()), (4, 16));
        let full: Vec<Batch> = loader.epoch(2).unwrap().collect();
        assert_eq!(full.len(), 4);
        assert!(full.iter().all(|b| b.len() == 4));
        let resumed = loader.epoch_from(2, 2).unwrap();
        assert_eq!(resumed.len(), 2);
        assert_eq!(resumed.collect::<Vec<_>>(), full[2..].to_vec());
        assert_eq!(loader.epoch_from(2, 9).unwrap().count(), 0);
    }

    #[test]
    fn shards_split_every_batch_as_distributed_sampler_does() {
        // with augmentation: an example's crop must not depend on which process reads it
        let config = LoaderConfig { augmentation: Augmentation::cifar(), ..LoaderConfig::train(8, 3) };
        let ds = ImageDataset::from_u8(
            "img".into(),
            &(0..21 * 3 * 6 * 6).map(|k| (k % 200 + 30) as u8).collect::<Vec<_>>(),
            (0..21).map(|i| i % 4).collect(),
            [3, 6, 6],
            (0..4).map(|c| c.to_string()).collect(),
            Normalization::cifar10(),
            &LoadOptions::default(),
        );
        let whole = DataLoader::new(Arc::new(ds), config).unwrap();
        let shards: Vec<DataLoader> = (0..3).map(|r| whole.sharded(r, 3, true).unwrap()).collect();
        assert_eq!(shards.iter().map(DataLoader::local_batch_size).collect::<Vec<_>>(), vec![3, 3, 2]);
        let per = 3 * 6 * 6;
        let parts: Vec<Vec<Batch>> = shards.iter().map(|s| s.epoch(1).unwrap().collect()).collect();
        for (b, global) in whole.epoch(1).unwrap().enumerate() {
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![3, 3, 3]);
            for (pos, label) in global.labels.iter().enumerate() {
                let (part, j) = (&parts[pos % 3][b], pos / 3);
                assert_eq!(part.labels[j], *label);
                assert_eq!(part.images[j * per..][..per], global.images[pos * per..][..per]);
            }
            assert_eq!(parts.iter().map(|p| p[b].len()).sum::<usize>(), global.len());
        }
        // 21 = 2 * 8 + 5: a last batch of 5 splits over 3 processes, not over 6
        let err = whole.sharded(0, 6, true).err().unwrap().to_string();
        assert!(err.contains("a batch of 5 examples cannot be split over 6 processes"), "{err}");
        assert!(whole.sharded(0, 6, false).is_ok(), "evaluation skips empty shards instead");
        assert!(whole.sharded(3, 3, true).is_err());
    }

    #[test]
    fn augmentation_changes_pixels_not_labels() {
        let ds = ImageDataset::from_u8(
            "img".into(),
            &(0..8 * 3 * 6 * 6).map(|k| (k % 200 + 30) as u8).collect::<Vec<_>>(),
            (0..8).collect(),
            [3, 6, 6],
            (0..8).map(|c| c.to_string()).collect(),
            Normalization::cifar10(),
            &LoadOptions::default(),
        );
        let ds = Arc::new(ds);
        let plain = DataLoader::new(ds.clone(), LoaderConfig::eval(8)).unwrap();
        let config = LoaderConfig { augmentation: Augmentation::cifar(), ..LoaderConfig::eval(8) };
        let aug = DataLoader::new(ds.clone(), config).unwrap();
        let (p, a) = (plain.epoch(0).unwrap().next().unwrap(), aug.epoch(0).unwrap().next().unwrap());
        assert_eq!(p.labels, a.labels);
        assert_eq!(p.images, ds.images);
        assert_ne!(p.images, a.images);
        // every augmented value is an original value of the same channel or that channel's black
        for (img, orig) in a.images.chunks(108).zip(ds.images.chunks(108)) {
            for c in 0..3 {
                let black = ds.normalization.apply(c, 0);
                for v in &img[c * 36..][..36] {
                    assert!(*v == black || orig[c * 36..][..36].contains(v));
                }
            }
        }
    }

    #[test]
    fn stopping_early_ends_the_background_thread() {
        let config = LoaderConfig { prefetch: 1, ..LoaderConfig::train(1, 0) };
        let loader = DataLoader::new(indexed_dataset(100), config).unwrap();
        let mut it = loader.epoch(0).unwrap();
        assert!(it.next().is_some());
        drop(it); // must not hang on the blocked sender
        assert!(DataLoader::new(indexed_dataset(1), LoaderConfig::train(0, 0)).is_err());
    }

    #[test]
    fn an_empty_data_set_is_an_error_and_batch_sizes_can_change() {
        let err = DataLoader::new(indexed_dataset(0), LoaderConfig::train(4, 0)).err().unwrap().to_string();
        assert_eq!(err, "invalid option: the data set idx holds no examples");
        let loader = DataLoader::new(indexed_dataset(10), LoaderConfig::eval(4)).unwrap();
        let smaller = loader.with_batch_size(3).unwrap();
        assert_eq!((smaller.batches_per_epoch(), smaller.config().shuffle), (4, false));
    }
}
