//! Public-API tests of goldpan-core, one binary.
mod data;
mod gradients;
mod ops;
mod training;
