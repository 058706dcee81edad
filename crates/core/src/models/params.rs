//! Named parameters in a fixed order, and their seeded initialisation.
//!
//! Initialisation follows PyTorch's defaults for conv and linear layers: weights and biases
//! uniform in `±1/√fan_in` (kaiming-uniform with a = √5 reduces to that bound), drawn from a
//! ChaCha8 stream so that a seed fixes every weight on every platform.
//!
//! ```
//! use goldpan_core::models::Initializer;
//! let mut a = Initializer::new(7);
//! let mut b = Initializer::new(7);
//! assert_eq!(a.uniform_values(4, 0.5), b.uniform_values(4, 0.5));
//! ```
use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Derives an independent seed for item `index` of `seed` (SplitMix64 finaliser), so that
/// steps and layers get decorrelated streams from one run seed.
pub fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draws initial weights from a seeded stream.
pub struct Initializer {
    rng: ChaCha8Rng,
}

impl Initializer {
    pub fn new(seed: u64) -> Self {
        // Stream 0 of the run's seed is reserved for initialisation; data order uses others.
        Self { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    pub fn uniform_values(&mut self, n: usize, bound: f32) -> Vec<f32> {
        (0..n).map(|_| self.rng.random_range(-bound..bound)).collect()
    }

    /// `n` draws from N(mean, std²), by Box–Muller on the same stream.
    pub fn normal_values(&mut self, n: usize, mean: f32, std: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let u1: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]
                let u2: f64 = self.rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                mean + std * z as f32
            })
            .collect()
    }

    /// A parameter of `shape` with the given values.
    pub fn var(shape: impl Into<Shape>, values: Vec<f32>, device: &Device) -> candle_core::Result<Var> {
        Var::from_tensor(&Tensor::from_vec(values, shape.into(), device)?)
    }

    /// A parameter of `shape` uniform in `±1/√fan_in`.
    pub fn fan_in_uniform(
        &mut self,
        shape: impl Into<Shape>,
        fan_in: usize,
        device: &Device,
    ) -> candle_core::Result<Var> {
        let shape = shape.into();
        let bound = 1.0 / (fan_in as f32).sqrt();
        let values = self.uniform_values(shape.elem_count(), bound);
        Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
    }
}

/// A model's parameters, in declaration order, and its buffers: state that is saved and
/// restored with the weights but never trained (batch norm's running statistics).
#[derive(Default)]
pub struct Params {
    entries: Vec<(String, Var)>,
    buffers: Vec<(String, Var)>,
}

impl Params {
    /// Adds a parameter and returns its tensor for the model to keep.
    pub fn add(&mut self, name: impl Into<String>, var: Var) -> Tensor {
        let t = var.as_tensor().clone();
        self.entries.push((name.into(), var));
        t
    }

    /// Adds a buffer and returns it for the model to read and update.
    pub fn add_buffer(&mut self, name: impl Into<String>, var: Var) -> Var {
        self.buffers.push((name.into(), var.clone()));
        var
    }

    /// The trainable parameters.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Position of parameter `name` in [`Params::iter`] order.
    pub fn index(&self, name: &str) -> crate::Result<usize> {
        self.entries
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| crate::Error::Internal(format!("the model has no parameter {name:?}")))
    }

    pub fn buffers(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.buffers.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.entries.iter().map(|(_, v)| v.elem_count()).sum()
    }

    pub fn dtype(&self) -> DType {
        self.entries.first().map(|(_, v)| v.dtype()).unwrap_or(DType::F32)
    }
}
