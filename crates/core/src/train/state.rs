//! A run's complete state — model, optimizer, position — and its checkpoint round trip.
use super::{Sgd, TrainConfig};
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::models::{self, Model, Params};
use candle_core::Device;
use sha2::{Digest, Sha256};
use std::path::Path;

pub struct TrainState {
    pub config: TrainConfig,
    pub model: Box<dyn Model>,
    pub sgd: Sgd,
    /// Epochs fully done.
    pub epoch: usize,
    /// Batches done in the epoch in progress.
    pub batch_in_epoch: usize,
    pub global_step: usize,
}

impl TrainState {
    /// A run at step 0 with weights initialised from the config's seed.
    pub fn fresh(config: TrainConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let model = models::spec(&config.model)?.build(config.seed, device)?;
        let sgd = Sgd::new(model.params(), config.lr, config.momentum, config.weight_decay, config.nesterov)?;
        Ok(Self { config, model, sgd, epoch: 0, batch_in_epoch: 0, global_step: 0 })
    }

    /// The run saved at `path`, with its stored config.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let ckpt = Checkpoint::load(path)?;
        let config = ckpt.config.clone();
        Self::from_checkpoint(path, ckpt, config, device)
    }

    /// The run saved at `path`, with `config` (the stored one, possibly overridden).
    pub fn from_checkpoint(path: &Path, ckpt: Checkpoint, config: TrainConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let model = models::spec(&config.model)?.build(config.seed, device)?;
        let layout: Vec<(String, Vec<usize>)> =
            model.params().iter().map(|(n, v)| (n.to_string(), v.dims().to_vec())).collect();
        let weights = Checkpoint::ordered(path, &ckpt.params, &layout, device)?;
        for ((_, var), w) in model.params().iter().zip(&weights) {
            var.set(w)?;
        }
        let buffer_layout: Vec<(String, Vec<usize>)> =
            model.params().buffers().map(|(n, v)| (n.to_string(), v.dims().to_vec())).collect();
        for ((_, var), b) in
            model.params().buffers().zip(Checkpoint::ordered(path, &ckpt.buffers, &buffer_layout, device)?)
        {
            var.set(&b)?;
        }
        let mut sgd = Sgd::new(model.params(), config.lr, config.momentum, config.weight_decay, config.nesterov)?;
        sgd.buffers = Checkpoint::ordered(path, &ckpt.momentum, &layout, device)?;
        Ok(Self {
            config,
            model,
            sgd,
            epoch: ckpt.epoch,
            batch_in_epoch: ckpt.batch_in_epoch,
            global_step: ckpt.global_step,
        })
    }

    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let dump = |t: &candle_core::Tensor| -> Result<(Vec<f32>, Vec<usize>)> {
            Ok((t.flatten_all()?.to_vec1::<f32>()?, t.dims().to_vec()))
        };
        let mut params = Vec::new();
        let mut momentum = Vec::new();
        let buffers = self
            .model
            .params()
            .buffers()
            .map(|(name, var)| dump(var.as_tensor()).map(|(v, s)| (name.to_string(), v, s)))
            .collect::<Result<Vec<_>>>()?;
        for ((name, var), buf) in self.model.params().iter().zip(&self.sgd.buffers) {
            let (v, s) = dump(var.as_tensor())?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::NanLoss {
                    value: f32::NAN,
                    epoch: self.epoch + 1,
                    step: self.global_step,
                    checkpoint: None,
                });
            }
            params.push((name.to_string(), v, s));
            let (v, s) = dump(buf)?;
            momentum.push((name.to_string(), v, s));
        }
        Ok(Checkpoint {
            config: self.config.clone(),
            epoch: self.epoch,
            batch_in_epoch: self.batch_in_epoch,
            global_step: self.global_step,
            params,
            buffers,
            momentum,
            sfda: None,
        })
    }
}

/// SHA-256 (hex) of the weights' (then the buffers') f32 bytes in order: equal hashes, equal
/// model state.
pub fn weights_hash(params: &Params) -> Result<String> {
    let mut h = Sha256::new();
    for (name, var) in params.iter().chain(params.buffers()) {
        h.update(name.as_bytes());
        for x in var.as_tensor().flatten_all()?.to_vec1::<f32>()? {
            h.update(x.to_le_bytes());
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
