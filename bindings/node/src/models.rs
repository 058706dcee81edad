//! `listModels`: the model registry with input shapes and parameter counts.
use goldpan_core::models;

#[napi_derive::napi(object)]
pub struct BindingModelInfo {
    pub name: String,
    pub description: String,
    pub input_shape: Vec<u32>,
    pub classes: u32,
    pub param_count: u32,
}

/// The model registry.
#[napi_derive::napi]
pub fn list_models(env: napi::Env) -> napi::Result<Vec<BindingModelInfo>> {
    crate::error::sync(&env, || {
        models::REGISTRY
            .iter()
            .map(|s| {
                let count = s.param_count()?;
                Ok(BindingModelInfo {
                    name: s.name.into(),
                    description: s.description.into(),
                    input_shape: vec![s.input.0 as u32, s.input.1 as u32, s.input.2 as u32],
                    classes: s.classes as u32,
                    param_count: count as u32,
                })
            })
            .collect()
    })
}
