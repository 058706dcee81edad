//! MNIST and Fashion-MNIST: an IDX image/label pair per split, 28×28×1, 10 classes.
//!
//! `train-{images-idx3,labels-idx1}-ubyte` is the training split and `t10k-…` the test split;
//! each file may be raw or `.gz`, and the raw one wins when both exist.
//!
//! ```
//! use goldpan_core::data::{load, Split};
//! let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"));
//! let test = load("mnist", dir, Split::Test).unwrap();
//! assert_eq!((test.len(), test.channels, test.height, test.width), (1000, 1, 28, 28));
//! assert_eq!(test.images.len(), 1000 * 784);
//! ```
use super::{read_idx_images, read_idx_labels, Dataset, Split};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const CLASSES: usize = 10;

/// Loads `split` from the IDX files in `dir`, pixels scaled to `[0, 1]`.
pub(super) fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;

    if images.count != labels.len() {
        let (images, labels) = (images.count, labels.len());
        return Err(Error::DataCountMismatch { path: labels_path, images, labels });
    }
    if let Some(index) = labels.iter().position(|&l| usize::from(l) >= CLASSES) {
        let label = labels[index].into();
        return Err(Error::DataLabel { path: labels_path, index, label, classes: CLASSES });
    }

    Ok(Dataset {
        images: images.pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        labels: labels.into_iter().map(u32::from).collect(),
        channels: 1,
        height: images.rows,
        width: images.cols,
        classes: CLASSES,
    })
}

/// `dir/stem` if it is a file, else `dir/stem.gz`, else [`Error::DataNotFound`] naming both.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    if raw.is_file() {
        return Ok(raw);
    }
    if gz.is_file() {
        return Ok(gz);
    }
    let mut tried = format!("{} and {}", raw.display(), gz.display());
    if !dir.is_dir() {
        tried += &format!("; {} is not a directory", dir.display());
    }
    Err(Error::DataNotFound { path: raw, tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_prefers_raw_then_gz() {
        let dir = tempfile::tempdir().unwrap();
        let err = find(dir.path(), "x").unwrap_err();
        assert!(matches!(&err, Error::DataNotFound { tried, .. } if tried.contains("x.gz")), "{err}");

        std::fs::write(dir.path().join("x.gz"), b"").unwrap();
        assert_eq!(find(dir.path(), "x").unwrap(), dir.path().join("x.gz"));
        std::fs::write(dir.path().join("x"), b"").unwrap();
        assert_eq!(find(dir.path(), "x").unwrap(), dir.path().join("x"));
    }

    #[test]
    fn missing_dir_is_named() {
        let err = find(Path::new("/nonexistent/goldpan"), "x").unwrap_err();
        assert!(matches!(&err, Error::DataNotFound { tried, .. } if tried.contains("not a directory")), "{err}");
    }
}
