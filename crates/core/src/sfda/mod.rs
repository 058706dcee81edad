//! Source-free domain adaptation on digits: SHOT's source training, PUL, and the baselines.
mod adapt;
mod common;
mod config;
pub mod losses;
mod pseudo_labels;
mod source;

pub use adapt::{adapt, AdaptResult};
pub use config::{default_model, AdaptConfig, Attach, Labels, Method, PulOptions, ShotOptions, SourceConfig};
pub use pseudo_labels::cosine_pseudo_labels;
pub use source::{train_source, SourceResult};
