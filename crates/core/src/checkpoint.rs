//! Checkpoints: one safetensors file holding everything a run needs to continue bit for bit.
//!
//! Tensors: `param/<name>` (weights), `buffer/<name>` (untrained state such as batch-norm
//! running statistics) and `momentum/<name>` (SGD buffers), f32.
//! Metadata: `format`, `config` (the run's [`TrainConfig`] as JSON), the position
//! `epoch`/`batch_in_epoch`/`global_step`, `rng`, and for SFDA models `sfda` — the data order and stochastic layers
//! are counter-based (see `train::batches`), so `(seed, epoch, step)` is the whole RNG state.
//!
//! Writes are atomic: a temporary file in the same directory, fsync, then rename, so a crash
//! or a full disk never leaves a half-written checkpoint where a good one was.
use crate::error::{Error, Result};
use crate::train::TrainConfig;
use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "goldpan-checkpoint/1";

/// Where a run stands, and with what weights and optimizer state.
pub struct Checkpoint {
    pub config: TrainConfig,
    /// Epochs fully done (0-based index of the epoch in progress).
    pub epoch: usize,
    /// Batches done in the epoch in progress.
    pub batch_in_epoch: usize,
    pub global_step: usize,
    /// `(name, values, shape)` in model order.
    pub params: Vec<(String, Vec<f32>, Vec<usize>)>,
    pub buffers: Vec<(String, Vec<f32>, Vec<usize>)>,
    pub momentum: Vec<(String, Vec<f32>, Vec<usize>)>,
    /// For models written by source training or adaptation (`sfda`): that stage's config and
    /// results, as JSON under the metadata key `sfda`.
    pub sfda: Option<serde_json::Value>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint { path: path.to_path_buf(), reason: reason.into() }
}

impl Checkpoint {
    /// Serialises and writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes_of = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut buffers = Vec::new();
        for (prefix, list) in [("param", &self.params), ("buffer", &self.buffers), ("momentum", &self.momentum)] {
            for (name, values, shape) in list.iter() {
                buffers.push((format!("{prefix}/{name}"), bytes_of(values), shape.clone()));
            }
        }
        let views = buffers
            .iter()
            .map(|(name, bytes, shape)| {
                Ok((
                    name.clone(),
                    TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| bad(path, e.to_string()))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = serde_json::to_string(&self.config).map_err(|e| Error::Internal(e.to_string()))?;
        let rng = serde_json::json!({ "algorithm": "chacha8-counter", "seed": self.config.seed, "epoch": self.epoch, "step": self.global_step });
        let mut metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("config".to_string(), config),
            ("epoch".to_string(), self.epoch.to_string()),
            ("batch_in_epoch".to_string(), self.batch_in_epoch.to_string()),
            ("global_step".to_string(), self.global_step.to_string()),
            ("rng".to_string(), rng.to_string()),
            ("goldpan_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ]);
        if let Some(sfda) = &self.sfda {
            metadata.insert("sfda".to_string(), sfda.to_string());
        }
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| bad(path, e.to_string()))?;
        write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => bad(path, "file not found"),
            _ => Error::io(path, e),
        })?;
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |key: &str| meta.get(key).ok_or_else(|| bad(path, format!("metadata field {key:?} missing")));
        if field("format")? != FORMAT {
            return Err(bad(path, format!("format {:?}, expected {FORMAT:?}", field("format")?)));
        }
        let number = |key: &str| {
            field(key)?.parse::<usize>().map_err(|_| bad(path, format!("metadata field {key:?} is not a count")))
        };
        let config: TrainConfig =
            serde_json::from_str(field("config")?).map_err(|e| bad(path, format!("config: {e}")))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, e.to_string()))?;
        let (mut params, mut buffers, mut momentum) = (Vec::new(), Vec::new(), Vec::new());
        // `names()` is unordered; the model defines the order, so sort by the model's order later.
        for name in tensors.names() {
            let view = tensors.tensor(name).map_err(|e| bad(path, e.to_string()))?;
            if view.dtype() != Dtype::F32 {
                return Err(bad(path, format!("tensor {name}: dtype {:?}, expected F32", view.dtype())));
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let entry = |n: &str| (n.to_string(), values, view.shape().to_vec());
            match name.split_once('/') {
                Some(("param", n)) => params.push(entry(n)),
                Some(("buffer", n)) => buffers.push(entry(n)),
                Some(("momentum", n)) => momentum.push(entry(n)),
                _ => return Err(bad(path, format!("unexpected tensor {name:?}"))),
            }
        }
        let sfda = match meta.get("sfda") {
            Some(s) => Some(serde_json::from_str(s).map_err(|e| bad(path, format!("sfda: {e}")))?),
            None => None,
        };
        Ok(Self {
            config,
            sfda,
            epoch: number("epoch")?,
            batch_in_epoch: number("batch_in_epoch")?,
            global_step: number("global_step")?,
            params,
            buffers,
            momentum,
        })
    }

    /// The tensors of `list` in the order of `names`, checked against `shapes`.
    pub(crate) fn ordered(
        path: &Path,
        list: &[(String, Vec<f32>, Vec<usize>)],
        names_and_shapes: &[(String, Vec<usize>)],
        device: &Device,
    ) -> Result<Vec<Tensor>> {
        if list.len() != names_and_shapes.len() {
            return Err(bad(path, format!("{} tensors, the model has {}", list.len(), names_and_shapes.len())));
        }
        names_and_shapes
            .iter()
            .map(|(name, shape)| {
                let (_, values, stored) = list
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .ok_or_else(|| bad(path, format!("tensor {name:?} missing")))?;
                if stored != shape {
                    return Err(bad(
                        path,
                        format!("tensor {name:?} has shape {stored:?}, the model expects {shape:?}"),
                    ));
                }
                Ok(Tensor::from_vec(values.clone(), shape.as_slice(), device)?)
            })
            .collect()
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable; not every platform can open a directory.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn garbage_is_a_checkpoint_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
        assert_eq!(Checkpoint::load(&p).err().unwrap().code(), "E_CHECKPOINT");
        assert_eq!(Checkpoint::load(&dir.path().join("missing")).err().unwrap().code(), "E_CHECKPOINT");
    }
}
