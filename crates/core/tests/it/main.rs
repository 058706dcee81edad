//! Public-API tests of goldpan-core, one binary.
mod data;
mod data_sfda;
mod gradients;
mod hessian;
mod layers;
mod linalg;
mod ntk;
mod ops;
mod program;
mod sfda;
mod sfda_losses;
mod spectra;
mod training;
