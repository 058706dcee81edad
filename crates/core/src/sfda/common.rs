//! What source training and adaptation share: the learning-rate schedule, seeded splits and
//! augmentation, evaluation passes and the model checkpoint.
use crate::checkpoint::Checkpoint;
use crate::data::{self, Dataset, Split};
use crate::error::{Error, Result};
use crate::models::{mix_seed, Mode, Model};
use crate::train::{batches, TrainConfig};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::Path;

/// SHOT's schedule: `lr₀ · (1 + 10·t/T)^−0.75` at iteration `t = 1..=T`.
pub(crate) fn scheduled_lr(lr0: f64, iteration: usize, max_iterations: usize) -> f64 {
    lr0 * (1.0 + 10.0 * iteration as f64 / max_iterations.max(1) as f64).powf(-0.75)
}

/// Seed-stream tags, so that each random choice of a run draws from its own stream.
pub(crate) const SPLIT_STREAM: u64 = 0x5b17;
pub(crate) const AUGMENT_STREAM: u64 = 0xa063e7;
pub(crate) const PROJECTOR_STREAM: u64 = 0x9601ec7;

/// `split` of `name`, shaped for `model_input`, cut to `limit` samples.
pub(crate) fn load(
    name: &str,
    dir: &Path,
    split: Split,
    model_input: (usize, usize, usize),
    limit: Option<usize>,
) -> Result<Dataset> {
    let set = data::load_as(name, dir, split, model_input)?;
    let set = limit.map_or(set.clone(), |n| set.truncate(n));
    if set.is_empty() {
        return Err(Error::config("dataset", format!("{name} {split:?} split is empty")));
    }
    Ok(set)
}

/// The samples of `set` at `indices`, in that order.
pub(crate) fn subset(set: &Dataset, indices: &[u32]) -> Dataset {
    let size = set.image_size();
    let mut images = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        images.extend_from_slice(&set.images[i as usize * size..(i as usize + 1) * size]);
    }
    let labels = indices.iter().map(|&i| set.labels[i as usize]).collect();
    Dataset { images, labels, ..*set }
}

/// A seeded split of `0..n` into `(train, held out)` with `⌊fraction·n⌋` held out (at least
/// one sample each).
pub(crate) fn split_indices(seed: u64, n: usize, fraction: f64) -> (Vec<u32>, Vec<u32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(mix_seed(seed, SPLIT_STREAM));
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    let held = ((fraction * n as f64) as usize).clamp(1, n.saturating_sub(1).max(1));
    let train = order.split_off(held);
    (train, order)
}

/// Like [`batches::gather`], each image first randomly cropped and rotated (SHOT's USPS
/// source transform), seeded by `(step_seed, position in the batch)`.
pub(crate) fn gather_augmented(
    set: &Dataset,
    indices: &[u32],
    step_seed: u64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let size = set.image_size();
    let mut images = vec![0f32; indices.len() * size];
    for (k, (&i, out)) in indices.iter().zip(images.chunks_exact_mut(size)).enumerate() {
        let src = &set.images[i as usize * size..(i as usize + 1) * size];
        let seed = mix_seed(mix_seed(step_seed, AUGMENT_STREAM), k as u64);
        data::augment_image(src, set.channels, set.height, set.width, seed, out)?;
    }
    let batch = Dataset { images, labels: indices.iter().map(|&i| set.labels[i as usize]).collect(), ..*set };
    let all: Vec<u32> = (0..indices.len() as u32).collect();
    Ok(batches::gather(&batch, &all, device)?)
}

/// Softmax outputs (`n × classes`, f64) and, with `features`, the bottleneck features
/// (`n × width`) of `model` in evaluation mode over all of `set`.
pub(crate) fn predict(
    model: &dyn Model,
    set: &Dataset,
    batch: usize,
    device: &Device,
    features: bool,
) -> Result<(Vec<f64>, Vec<f32>)> {
    let (mut probs, mut feats) = (Vec::new(), Vec::new());
    let order: Vec<u32> = (0..set.len() as u32).collect();
    for chunk in order.chunks(batch.max(1)) {
        let (x, _) = batches::gather(set, chunk, device)?;
        let logits = crate::ops::no_grad(|| -> Result<Tensor> {
            Ok(if features {
                let stages =
                    model.stages(&x, Mode::Eval).ok_or_else(|| Error::Internal("model without stages".into()))??;
                feats.extend(stages.bottleneck.flatten_all()?.to_vec1::<f32>()?);
                stages.logits
            } else {
                model.forward(&x, Mode::Eval)?
            })
        })?;
        let classes = logits.dim(1)?;
        probs.extend(crate::sfda::losses::softmax_rows(&logits.flatten_all()?.to_vec1::<f32>()?, classes));
    }
    Ok((probs, feats))
}

/// Writes `model`'s weights as a checkpoint that `goldpan eval` reads (with `config`'s model
/// and dataset) and that records the SFDA stage in `sfda`. The optimizer state is not kept:
/// these models are results, not runs to resume.
pub(crate) fn save_model(model: &dyn Model, config: TrainConfig, sfda: serde_json::Value, path: &Path) -> Result<()> {
    let dump = |name: &str, t: &Tensor| -> Result<(String, Vec<f32>, Vec<usize>)> {
        Ok((name.to_string(), t.flatten_all()?.to_vec1::<f32>()?, t.dims().to_vec()))
    };
    let params = model.params().iter().map(|(n, v)| dump(n, v.as_tensor())).collect::<Result<Vec<_>>>()?;
    if params.iter().any(|(_, v, _)| v.iter().any(|x| !x.is_finite())) {
        return Err(Error::NanLoss { value: f32::NAN, epoch: 0, step: 0, checkpoint: None });
    }
    let momentum = params.iter().map(|(n, v, s)| (n.clone(), vec![0.0; v.len()], s.clone())).collect();
    let buffers = model.params().buffers().map(|(n, v)| dump(n, v.as_tensor())).collect::<Result<Vec<_>>>()?;
    let ckpt =
        Checkpoint { config, epoch: 0, batch_in_epoch: 0, global_step: 0, params, buffers, momentum, sfda: Some(sfda) };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    ckpt.save(path)
}

/// A model with the weights and buffers of the checkpoint at `path`.
pub(crate) fn load_model(path: &Path, device: &Device) -> Result<(Box<dyn Model>, Checkpoint)> {
    let ckpt = Checkpoint::load(path)?;
    let config = ckpt.config.clone();
    let state = crate::train::TrainState::from_checkpoint(path, Checkpoint::load(path)?, config, device)?;
    Ok((state.model, ckpt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_shots() {
        assert!((scheduled_lr(0.01, 0, 100) - 0.01).abs() < 1e-15);
        // At the end: 0.01 · 11^−0.75.
        assert!((scheduled_lr(0.01, 100, 100) - 0.01 * 11f64.powf(-0.75)).abs() < 1e-15);
        assert!(scheduled_lr(0.01, 50, 100) < scheduled_lr(0.01, 49, 100));
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let (a, b) = split_indices(3, 1000, 0.1);
        assert_eq!((a.len(), b.len()), (900, 100));
        let mut all: Vec<u32> = a.iter().chain(&b).copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(split_indices(3, 1000, 0.1), (a.clone(), b));
        assert_ne!(split_indices(4, 1000, 0.1).0, a);
        // Tiny sets still keep one sample on each side.
        assert_eq!(split_indices(0, 2, 0.1).1.len(), 1);
    }
}
