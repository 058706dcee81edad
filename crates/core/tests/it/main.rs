//! Public-API tests of goldpan-core, one binary.
mod data;
mod data_sfda;
mod gradients;
mod layers;
mod ops;
mod sfda;
mod sfda_losses;
mod training;
