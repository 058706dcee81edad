//! `readCheckpoint`: what a checkpoint holds, without loading a model.
use goldpan_core::checkpoint::Checkpoint;
use std::path::Path;

#[napi_derive::napi(object)]
pub struct BindingCheckpointInfo {
    pub path: String,
    pub model: String,
    pub dataset: String,
    /// Epochs fully done.
    pub epoch: u32,
    pub step: u32,
    pub param_count: u32,
    /// The run's full config (JSON).
    pub config_json: String,
}

#[napi_derive::napi]
pub fn read_checkpoint(env: napi::Env, path: String) -> napi::Result<BindingCheckpointInfo> {
    crate::error::sync(&env, || {
        let c = Checkpoint::load(Path::new(&path))?;
        Ok(BindingCheckpointInfo {
            model: c.config.model.clone(),
            dataset: c.config.dataset.clone(),
            epoch: c.epoch as u32,
            step: c.global_step as u32,
            param_count: c.params.iter().map(|(_, v, _)| v.len()).sum::<usize>() as u32,
            config_json: serde_json::to_string(&c.config).map_err(|e| goldpan_core::Error::Internal(e.to_string()))?,
            path,
        })
    })
}
