//! Datasets in memory: images as `f32` in `[0, 1]`, NCHW, with `u32` labels.
//!
//! A data directory holds one folder per dataset in its original public format
//! (`<dir>/mnist/train-images-idx3-ubyte.gz`, …), the layout of `../shared/data/`.
//!
//! | name | folder holds | images |
//! | --- | --- | --- |
//! | `mnist`, `fashion-mnist` | IDX files, raw or `.gz` | 1×28×28 |
//! | `usps` | `usps.h5` (HDF5), or libsvm `usps[.bz2]` / `usps.t[.bz2]` | 1×16×16 |
//! | `svhn` | `train_32x32.mat` / `test_32x32.mat` (MATLAB v5) | 3×32×32 |
//!
//! [`resize_bilinear`], [`to_rgb`], [`normalize_half`] and [`augment_image`] bring them to one shape
//! and range as SHOT's digit experiments do.
mod idx;
mod mnist;
mod svhn;
mod transform;
mod usps;

pub use idx::{read_idx_images, read_idx_labels, IdxImages};
pub use transform::{augment_image, normalize_half, resize_bilinear, to_rgb, AUGMENT_DEGREES, AUGMENT_PADDING};

use crate::error::{Error, Result};
use std::path::Path;

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

/// A labelled image dataset held in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `len × channels × height × width` values in `[0, 1]`, image after image.
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The first `n` samples (all of them if `n ≥ len`).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.image_size());
        self
    }
}

/// Names accepted by [`load`].
pub const DATASETS: &[&str] = &["mnist", "fashion-mnist", "usps", "svhn"];

/// Loads `name`'s `split` from `<data_dir>/<name>/`.
pub fn load(name: &str, data_dir: &Path, split: Split) -> Result<Dataset> {
    match name {
        "mnist" | "fashion-mnist" => mnist::load(&data_dir.join(name), split),
        "usps" => usps::load(&data_dir.join(name), split),
        "svhn" => svhn::load(&data_dir.join(name), split),
        _ => Err(Error::config("dataset", format!("unknown dataset {name:?}; available: {}", DATASETS.join(", ")))),
    }
}

/// Loads `name`'s `split` shaped for a model taking `(channels, height, width)` input, as
/// SHOT's digit transforms do: images of another size are resized (bilinear, as torchvision's
/// `Resize`), grey images replicated to 3 channels when the model takes RGB. Colour images are
/// never turned grey; that is an [`Error::Config`].
pub fn load_as(
    name: &str,
    data_dir: &Path,
    split: Split,
    (channels, height, width): (usize, usize, usize),
) -> Result<Dataset> {
    let mut set = load(name, data_dir, split)?;
    if (set.height, set.width) != (height, width) {
        set = resize_bilinear(&set, height, width)?;
    }
    match (set.channels, channels) {
        (c, want) if c == want => Ok(set),
        (1, 3) => to_rgb(&set),
        (c, want) => Err(Error::config(
            "dataset",
            format!("{name} images have {c} channels and cannot be converted to the model's {want}"),
        )),
    }
}
