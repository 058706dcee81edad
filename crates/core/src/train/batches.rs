//! Data order and batch assembly.
//!
//! Randomness is counter-based: epoch `e`'s order is a function of `(seed, e)` alone
//! (ChaCha8 stream `1 + e`), and a training step's stochastic layers get a seed from
//! `(seed, step)`. A run's whole RNG state is therefore `(seed, epoch, step)`, which a
//! checkpoint stores, and resuming mid-epoch replays exactly the same batches.
use crate::data::Dataset;
use candle_core::{Device, Result, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The shuffled sample order of epoch `epoch` (0-based).
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1 + epoch as u64);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    order
}

/// Labels drawn uniformly from `0..classes` for `n` samples, from `seed` and `stream` (the
/// same pair, the same labels).
pub fn random_labels(seed: u64, stream: u64, n: usize, classes: usize) -> Vec<u32> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(crate::models::mix_seed(seed, RANDOM_LABELS));
    rng.set_stream(stream);
    (0..n).map(|_| rng.random_range(0..classes as u32)).collect()
}

/// Seed tag of [`random_labels`], apart from the data order's and the layers' streams.
const RANDOM_LABELS: u64 = 0x1abe1;

/// A seed for the stochastic layers of global step `step`.
pub fn step_seed(seed: u64, step: usize) -> u64 {
    crate::models::mix_seed(seed, step as u64)
}

/// Mean and standard deviation applied to pixel values in `[0, 1]`: SHOT's digit transform
/// `Normalize(0.5, 0.5)`, so that every digit domain lands in `[-1, 1]`.
const MEAN: f32 = 0.5;
const STD: f32 = 0.5;

/// The normalised images and the labels of `indices`, as `(N×C×H×W f32, N u32)`.
pub fn gather(data: &Dataset, indices: &[u32], device: &Device) -> Result<(Tensor, Tensor)> {
    let size = data.image_size();
    let mut x = Vec::with_capacity(indices.len() * size);
    let mut y = Vec::with_capacity(indices.len());
    for &i in indices {
        let i = i as usize;
        x.extend(data.images[i * size..(i + 1) * size].iter().map(|v| (v - MEAN) / STD));
        y.push(data.labels[i]);
    }
    let n = indices.len();
    let x = Tensor::from_vec(x, (n, data.channels, data.height, data.width), device)?;
    let y = Tensor::from_vec(y, n, device)?;
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(3, 0, 100);
        assert_eq!(a, epoch_order(3, 0, 100));
        assert_ne!(a, epoch_order(3, 1, 100));
        assert_ne!(a, epoch_order(4, 0, 100));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
    }

    #[test]
    fn step_seeds_differ() {
        assert_ne!(step_seed(0, 0), step_seed(0, 1));
        assert_ne!(step_seed(0, 1), step_seed(1, 1));
    }
}
