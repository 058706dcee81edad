//! Throughput of one training step or one inference pass on synthetic data, for `bench/`.
//!
//! The same step as the training loop (forward, cross-entropy, backward, SGD with momentum
//! 0.9 and weight decay 5e-4), on random inputs, so that the numbers compare with PyTorch's.
use crate::error::{Error, Result};
use crate::models::{self, Mode};
use crate::train::Sgd;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    Train,
    Infer,
}

impl std::str::FromStr for BenchMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Self::Train),
            "infer" => Ok(Self::Infer),
            _ => Err(Error::config("mode", format!("expected \"train\" or \"infer\", got {s:?}"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchResult {
    pub iters: usize,
    pub wall_sec: f64,
    pub images_per_sec: f64,
}

pub fn throughput(
    model: &str,
    batch: usize,
    mode: BenchMode,
    iters: usize,
    warmup: usize,
    seed: u64,
) -> Result<BenchResult> {
    if batch == 0 || iters == 0 {
        return Err(Error::config("batchSize/iters", "must be ≥ 1"));
    }
    let device = Device::Cpu;
    let spec = models::spec(model)?;
    let net = spec.build(seed, &device)?;
    let mut sgd = Sgd::new(net.params(), 0.01, 0.9, 5e-4, false)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xbe_4c);
    let (c, h, w) = spec.input;
    let x: Vec<f32> = (0..batch * c * h * w).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<u32> = (0..batch).map(|_| rng.random_range(0..spec.classes as u32)).collect();
    let x = Tensor::from_vec(x, (batch, c, h, w), &device)?;
    let y = Tensor::from_vec(y, batch, &device)?;
    let mut step = |i: usize| -> Result<()> {
        match mode {
            BenchMode::Train => {
                // The training loop's own step (the program engine where it applies).
                crate::train::step::sgd_step(
                    net.as_ref(),
                    &mut sgd,
                    spec.classes,
                    &x,
                    &y,
                    Mode::Train { seed: i as u64 },
                )?;
            }
            BenchMode::Infer => {
                crate::ops::no_grad(|| net.forward(&x, Mode::Eval))?.to_vec2::<f32>()?;
            }
        }
        Ok(())
    };
    for i in 0..warmup {
        step(i)?;
    }
    let start = Instant::now();
    for i in 0..iters {
        step(warmup + i)?;
    }
    let wall_sec = start.elapsed().as_secs_f64();
    Ok(BenchResult { iters, wall_sec, images_per_sec: (iters * batch) as f64 / wall_sec })
}
