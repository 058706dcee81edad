//! The loss Hessian of a model: exact products over a sample set (through
//! [`crate::program`]), its spectra (top eigenpairs, trace, density), and the paper's Eq. 3
//! diagnostics along training.
pub mod analysis;
pub mod eq3;
pub mod operator;
pub mod spectra;

pub use analysis::{analyse, hvp, HessianConfig, HessianReport, HvpResult};
