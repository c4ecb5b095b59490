//! The batch loader: one epoch of transformed batches, prepared on a background thread.
//!
//! Everything random is a function of `(seed, epoch)` (the order) and `(seed, epoch, batch
//! index)` (the augmentation), so results do not depend on threads or timing.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::transform::{Pipeline, Sample};
use super::{derived_rng, fisher_yates, Dataset, Stream};

/// Batches prepared ahead of the consumer. Two keep the worker busy during a training step
/// without holding much memory.
const PREFETCH: usize = 2;

/// One batch of transformed images.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Pixels, `B * C * H * W`, each image CHW.
    pub images: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u32>,
    /// `[B, C, H, W]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Number of batches of `batch_size` (the last one possibly partial) for `n` images.
pub fn batch_count(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size.max(1))
}

/// The sample order of one epoch: `0..n` if `!shuffle`, else a Fisher-Yates permutation drawn
/// from a ChaCha8 generator determined by `(seed, epoch)`.
pub fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    if shuffle {
        fisher_yates(
            &mut order,
            &mut derived_rng(seed, Stream::Order, epoch as u64, 0),
        );
    }
    order
}

/// Yields the batches of one epoch.
///
/// Order: identity if `!shuffle`, else [`epoch_order`]. Batch `b` is augmented with a ChaCha8
/// generator determined by `(seed, epoch, b)`, so its contents never depend on threads. `limit`
/// keeps only the first `limit` images of `data`; the last batch may be partial (PyTorch's
/// `drop_last=False`). A `batch_size` of 0 is treated as 1.
///
/// Batches are prepared on a background thread, at most a couple ahead of the consumer. Dropping
/// the iterator early stops that thread and waits for it.
pub fn epoch_batches(
    data: Arc<Dataset>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    epoch: usize,
    limit: Option<usize>,
) -> EpochBatches {
    epoch_batches_upto(
        data,
        pipeline,
        batch_size,
        shuffle,
        seed,
        epoch,
        limit,
        usize::MAX,
    )
}

/// [`epoch_batches`], yielding (and preparing) only the first `max_batches` batches: an epoch
/// without its partial last batch (`drop_last`), or the part of the last epoch a run trains on.
/// The batches it yields are those [`epoch_batches`] yields first.
#[allow(clippy::too_many_arguments)]
pub fn epoch_batches_upto(
    data: Arc<Dataset>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    epoch: usize,
    limit: Option<usize>,
    max_batches: usize,
) -> EpochBatches {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    let batch_size = batch_size.max(1);
    let producer = Producer {
        order: epoch_order(n, shuffle, seed, epoch),
        data,
        pipeline,
        batch_size,
        seed,
        epoch,
    };
    let total = batch_count(n, batch_size).min(max_batches);
    EpochBatches::start(producer, total)
}

/// Builds batches; shared by the background thread and the inline fallback.
struct Producer {
    data: Arc<Dataset>,
    pipeline: Arc<Pipeline>,
    order: Vec<u32>,
    batch_size: usize,
    seed: u64,
    epoch: usize,
}

impl Producer {
    fn batch(&self, b: usize) -> Batch {
        let start = b * self.batch_size;
        let indices = &self.order[start..(start + self.batch_size).min(self.order.len())];
        let per_image = self.pipeline.output_len();
        let mut images = vec![0.0f32; indices.len() * per_image];
        let mut labels = Vec::with_capacity(indices.len());
        let mut rng = derived_rng(self.seed, Stream::Augment, self.epoch as u64, b as u64);
        for (k, &i) in indices.iter().enumerate() {
            let i = i as usize;
            let out = &mut images[k * per_image..(k + 1) * per_image];
            let sample = Sample {
                seed: self.seed,
                index: i as u64,
                epoch: self.epoch as u64,
            };
            self.pipeline
                .apply_sample(self.data.image(i), Some(sample), &mut rng, out);
            labels.push(u32::from(self.data.labels[i]));
        }
        let [c, h, w] = self.pipeline.output_shape();
        Batch {
            images,
            labels,
            shape: [indices.len(), c, h, w],
        }
    }
}

enum Source {
    /// Batches come from a worker thread through a bounded channel.
    Thread {
        rx: Option<Receiver<Batch>>,
        worker: Option<JoinHandle<()>>,
    },
    /// The thread could not be spawned: batches are built on demand.
    Inline {
        producer: Arc<Producer>,
        next: usize,
    },
}

/// Iterator over the batches of one epoch; see [`epoch_batches`].
pub struct EpochBatches {
    source: Source,
    remaining: usize,
}

impl EpochBatches {
    fn start(producer: Producer, total: usize) -> Self {
        if total == 0 {
            return Self {
                source: Source::Inline {
                    producer: Arc::new(producer),
                    next: 0,
                },
                remaining: 0,
            };
        }
        let (tx, rx) = sync_channel(PREFETCH);
        let producer = Arc::new(producer);
        let shared = Arc::clone(&producer);
        let spawned = std::thread::Builder::new()
            .name("runner-data".into())
            .spawn(move || {
                for b in 0..total {
                    // A send error means the consumer dropped the iterator: stop early.
                    if tx.send(shared.batch(b)).is_err() {
                        break;
                    }
                }
            });
        let source = match spawned {
            Ok(worker) => Source::Thread {
                rx: Some(rx),
                worker: Some(worker),
            },
            Err(e) => {
                tracing::warn!(
                    "cannot start the data loader thread ({e}); preparing batches inline"
                );
                Source::Inline { producer, next: 0 }
            }
        };
        Self {
            source,
            remaining: total,
        }
    }
}

impl Iterator for EpochBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.remaining == 0 {
            return None;
        }
        let batch = match &mut self.source {
            Source::Inline { producer, next } => {
                *next += 1;
                Some(producer.batch(*next - 1))
            }
            Source::Thread { rx, worker } => match rx.as_ref().map(Receiver::recv) {
                Some(Ok(batch)) => Some(batch),
                _ => {
                    // The worker ended before sending every batch: it panicked. Surface that.
                    if let Some(Err(panic)) = worker.take().map(JoinHandle::join) {
                        std::panic::resume_unwind(panic);
                    }
                    None
                }
            },
        };
        self.remaining = if batch.is_some() {
            self.remaining - 1
        } else {
            0
        };
        batch
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for EpochBatches {}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        if let Source::Thread { rx, worker } = &mut self.source {
            // Dropping the receiver makes the worker's next (or pending) send fail, so it exits
            // after at most the batch it is building.
            drop(rx.take());
            if let Some(worker) = worker.take() {
                // A worker panic was already reported or is irrelevant once the epoch is abandoned.
                let _ = worker.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::experiment::{PaddingMode, Transform};

    /// `n` 1x2x2 images; image `i` has every pixel `i % 256` and label `i % 10`.
    fn data(n: usize) -> Arc<Dataset> {
        Arc::new(Dataset {
            images: (0..n).flat_map(|i| [(i % 256) as u8; 4]).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            shape: [1, 2, 2],
            classes: (0..10).map(|c| c.to_string()).collect(),
        })
    }

    fn plain() -> Arc<Pipeline> {
        Arc::new(Pipeline::new(&[], [1, 2, 2]))
    }

    /// Recovers image indices from a batch of [`data`] images (for n <= 256).
    fn indices(batch: &Batch) -> Vec<usize> {
        batch
            .images
            .chunks_exact(4)
            .map(|img| (img[0] * 255.0).round() as usize)
            .collect()
    }

    fn epoch(
        n: usize,
        bs: usize,
        shuffle: bool,
        seed: u64,
        ep: usize,
        limit: Option<usize>,
    ) -> Vec<Batch> {
        epoch_batches(data(n), plain(), bs, shuffle, seed, ep, limit).collect()
    }

    #[test]
    fn every_index_once_with_sizes_and_shapes() {
        struct Case {
            n: usize,
            bs: usize,
            shuffle: bool,
            limit: Option<usize>,
            sizes: &'static [usize],
            msg: &'static str,
        }
        #[rustfmt::skip]
        let cases = [
            Case { n: 10, bs: 4, shuffle: false, limit: None, sizes: &[4, 4, 2], msg: "partial last batch kept" },
            Case { n: 10, bs: 5, shuffle: true, limit: None, sizes: &[5, 5], msg: "exact multiple" },
            Case { n: 10, bs: 4, shuffle: true, limit: Some(7), sizes: &[4, 3], msg: "limit keeps the first 7" },
            Case { n: 10, bs: 4, shuffle: false, limit: Some(50), sizes: &[4, 4, 2], msg: "limit above size" },
            Case { n: 10, bs: 64, shuffle: true, limit: None, sizes: &[10], msg: "one batch larger than the set" },
            Case { n: 0, bs: 4, shuffle: true, limit: None, sizes: &[], msg: "empty set" },
            Case { n: 5, bs: 0, shuffle: false, limit: None, sizes: &[1; 5], msg: "batch size 0 taken as 1" },
        ];
        for Case {
            n,
            bs,
            shuffle,
            limit,
            sizes,
            msg,
        } in cases
        {
            let batches = epoch(n, bs, shuffle, 3, 0, limit);
            let got: Vec<usize> = batches.iter().map(Batch::len).collect();
            assert_eq!(got, sizes, "{msg}");
            let mut seen: Vec<usize> = batches.iter().flat_map(indices).collect();
            seen.sort_unstable();
            let kept = limit.map_or(n, |l| l.min(n));
            assert_eq!(
                seen,
                (0..kept).collect::<Vec<_>>(),
                "{msg}: each index once"
            );
            for b in &batches {
                assert_eq!(b.shape, [b.len(), 1, 2, 2], "{msg}");
                assert_eq!(b.images.len(), b.len() * 4, "{msg}");
                let want: Vec<u32> = indices(b).iter().map(|i| (i % 10) as u32).collect();
                assert_eq!(b.labels, want, "{msg}: labels follow their images");
            }
        }
    }

    #[test]
    fn order_is_identity_without_shuffle() {
        let order: Vec<usize> = epoch(9, 4, false, 1, 5, None)
            .iter()
            .flat_map(indices)
            .collect();
        assert_eq!(order, (0..9).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_is_deterministic_per_epoch_and_differs_between_epochs() {
        let order = |seed, ep| -> Vec<usize> {
            epoch(100, 16, true, seed, ep, None)
                .iter()
                .flat_map(indices)
                .collect()
        };
        assert_eq!(order(1, 0), order(1, 0), "same seed and epoch, same order");
        assert_ne!(order(1, 0), order(1, 1), "next epoch, new order");
        assert_ne!(order(1, 0), order(2, 0), "other seed, other order");
        assert_ne!(
            order(1, 0),
            (0..100).collect::<Vec<_>>(),
            "actually shuffled"
        );
    }

    #[test]
    fn augmentation_is_deterministic_per_seed_epoch_batch() {
        let d = Arc::new(Dataset {
            images: (0..64 * 3 * 8 * 8).map(|i| (i % 251) as u8).collect(),
            labels: vec![0; 64],
            shape: [3, 8, 8],
            classes: vec!["a".into()],
        });
        let p = Arc::new(Pipeline::new(
            &[
                Transform::RandomCrop {
                    size: 8,
                    padding: 2,
                    padding_mode: PaddingMode::Constant,
                    fill: 0.0,
                    pad_if_needed: false,
                },
                Transform::RandomHorizontalFlip {
                    p: 0.5,
                    alternate: false,
                },
            ],
            [3, 8, 8],
        ));
        let run = |seed, ep| -> Vec<Batch> {
            epoch_batches(d.clone(), p.clone(), 10, true, seed, ep, None).collect()
        };
        assert_eq!(run(4, 2), run(4, 2), "same (seed, epoch), same batches");
        assert_ne!(run(4, 2), run(4, 3), "another epoch, other augmentation");
        // Batch 1 alone (built through the same producer) equals batch 1 of a full epoch.
        let producer = Producer {
            data: d.clone(),
            pipeline: p.clone(),
            order: epoch_order(64, true, 4, 2),
            batch_size: 10,
            seed: 4,
            epoch: 2,
        };
        assert_eq!(
            producer.batch(1),
            run(4, 2)[1],
            "a batch depends only on its index"
        );
    }

    #[test]
    fn size_hint_counts_down() {
        let mut it = epoch_batches(data(10), plain(), 3, false, 0, 0, None);
        assert_eq!(it.len(), 4);
        it.next();
        assert_eq!(it.len(), 3);
        assert_eq!(it.by_ref().count(), 3);
        assert_eq!(it.next(), None, "stays exhausted");
    }

    #[test]
    fn dropping_early_stops_the_worker() {
        // Run the drops on a helper thread so that a hang fails the test instead of stalling it.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for taken in [0, 1, 2, 5] {
                let mut it = epoch_batches(data(100_000), plain(), 1, true, 0, 0, None);
                for _ in 0..taken {
                    assert!(it.next().is_some());
                }
                drop(it);
            }
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
            "dropping a partly consumed epoch must not hang"
        );
    }
}
