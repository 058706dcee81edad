//! USPS handwritten digits: 16×16×1 images in `[0, 1]`, 10 classes (7,291 train, 2,007 test),
//! read from one of two public forms in `<data_dir>/usps/`:
//!
//! - **HDF5** `usps.h5` (the Kaggle file): groups `train` and `test`, each holding `data`
//!   (`N × 256` floats in `[0, 1]`, one row-major 16×16 image per row; background 0, ink 1) and
//!   `target` (`N` integers, the digits 0..9). Chunked and gzip-compressed datasets are fine: it is
//!   read with the pure-Rust `rust-hdf5` crate, no libhdf5.
//! - **libsvm text**, torchvision's source: `usps` or `usps.bz2` (train) and `usps.t` or
//!   `usps.t.bz2` (test). Each line is `label index:value …` with the label `1..=10` (digit + 1),
//!   indices `1..=256` and values in `[-1, 1]`; a pixel is `(value + 1) / 2`, clamped to `[0, 1]`.
//!   In libsvm's sparse form **an index that is absent has the value 0, so its pixel is 0.5**
//!   (torchvision assumes all 256 are present, as they are in the published files, and there the
//!   two agree). A file is bzip2 if it starts with `BZh`, whatever its name; the raw file wins
//!   when both exist.
//!
//! `usps.h5` wins when it exists; only without it are the libsvm files looked for.
//!
//! Errors about one object of the HDF5 file name it as `<file>/<group>/<dataset>`. Labels stored
//! as digits (HDF5) that are not in `0..10` are [`Error::DataLabel`]; labels stored as digit + 1
//! (libsvm) outside `1..=10` are [`Error::DataFormat`], whose message gives the line and the value.
//!
//! ```
//! use goldpan_core::data::{load, Split};
//! let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"));
//! let test = load("usps", dir, Split::Test).unwrap();
//! assert_eq!((test.len(), test.channels, test.height, test.width, test.classes), (500, 1, 16, 16, 10));
//! assert!(test.images.iter().all(|p| (0.0..=1.0).contains(p)));
//! ```
use super::{Dataset, Split};
use crate::error::{Error, Result};
use bzip2::bufread::MultiBzDecoder;
use rust_hdf5::{DatatypeMessage, H5Dataset, H5File, Hdf5Error};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const SIDE: usize = 16;
const PIXELS: usize = SIDE * SIDE;
const CLASSES: usize = 10;
const HDF5_SIGNATURE: [u8; 8] = *b"\x89HDF\r\n\x1a\n";
const BZIP2_MAGIC: &[u8] = b"BZh";
/// Deflate's largest expansion is about 1032:1; no valid dataset holds more than this per file byte.
const MAX_EXPANSION: u64 = 1100;

/// Loads `split` from `dir` (`<data_dir>/usps`): `usps.h5` if present, else the libsvm files.
pub(super) fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let h5 = dir.join("usps.h5");
    if h5.is_file() {
        return read_h5(&h5, split);
    }
    let stem = match split {
        Split::Train => "usps",
        Split::Test => "usps.t",
    };
    let raw = dir.join(stem);
    let bz2 = dir.join(format!("{stem}.bz2"));
    for path in [&raw, &bz2] {
        if path.is_file() {
            return read_libsvm(path);
        }
    }
    let mut tried = format!("{}, {} and {}", h5.display(), raw.display(), bz2.display());
    if !dir.is_dir() {
        tried += &format!("; {} is not a directory", dir.display());
    }
    Err(Error::DataNotFound { path: h5, tried })
}

// === HDF5 ===

/// Reads the `train` or `test` group of the Kaggle `usps.h5`.
fn read_h5(path: &Path, split: Split) -> Result<Dataset> {
    check_hdf5_length(path)?;
    let file = H5File::options().best_effort_locking().open(path).map_err(|e| hdf5_error(path, "cannot open", e))?;
    let group = match split {
        Split::Train => "train",
        Split::Test => "test",
    };
    let (data_name, target_name) = (format!("{group}/data"), format!("{group}/target"));
    let data = open_dataset(&file, path, &data_name)?;
    let target = open_dataset(&file, path, &target_name)?;
    let (data_path, target_path) = (path.join(&data_name), path.join(&target_name));

    let shape = data.shape();
    let &[count, width] = shape.as_slice() else {
        return Err(Error::DataDims { path: data_path, found: shape.len(), expected: 2 });
    };
    if width != PIXELS {
        let reason = format!("shape {count}×{width}, expected N×{PIXELS} ({SIDE}×{SIDE} images, one per row)");
        return Err(Error::DataFormat { path: data_path, reason });
    }
    let labels_count = match target.shape().as_slice() {
        &[n] | &[n, 1] => n,
        other => {
            let reason = format!("shape {other:?}, expected [N] or [N, 1] (one label per image)");
            return Err(Error::DataFormat { path: target_path, reason });
        }
    };
    if labels_count != count {
        return Err(Error::DataCountMismatch { path: path.join(group), images: count, labels: labels_count });
    }

    // Deflate expands at most ~1032:1, so a shape that promises more than that is a corrupt
    // header, refused before the reader allocates for it.
    let file_len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    let promised = (count as u64).saturating_mul((PIXELS * data.element_size()) as u64);
    if promised > file_len.saturating_mul(MAX_EXPANSION) {
        let reason =
            format!("shape {count}×{PIXELS} promises {promised} bytes, more than a {file_len}-byte file can hold");
        return Err(Error::DataFormat { path: data_path, reason });
    }
    let values = read_numbers(&data, &data_path)?;
    if values.len() != count * PIXELS {
        let reason = format!("read {} values for a {count}×{PIXELS} dataset", values.len());
        return Err(Error::DataFormat { path: data_path, reason });
    }
    if let Some(i) = values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        let (image, pixel) = (i / PIXELS, i % PIXELS);
        let (row, col) = (pixel / SIDE, pixel % SIDE);
        let reason = format!("value {} of image {image} at row {row}, column {col} is outside [0, 1]", values[i]);
        return Err(Error::DataFormat { path: data_path, reason });
    }

    let mut labels = Vec::with_capacity(count);
    for (index, &v) in read_numbers(&target, &target_path)?.iter().enumerate() {
        if v.fract() != 0.0 || v < 0.0 {
            let reason = format!("label {v} at index {index} is not a digit 0..9");
            return Err(Error::DataFormat { path: target_path, reason });
        }
        if v >= CLASSES as f64 {
            let label = v.min(u32::MAX as f64) as u32;
            return Err(Error::DataLabel { path: target_path, index, label, classes: CLASSES });
        }
        labels.push(v as u32);
    }
    if labels.len() != count {
        let reason = format!("read {} labels for a dataset of {count}", labels.len());
        return Err(Error::DataFormat { path: target_path, reason });
    }

    Ok(Dataset {
        images: values.into_iter().map(|v| v as f32).collect(),
        labels,
        channels: 1,
        height: SIDE,
        width: SIDE,
        classes: CLASSES,
    })
}

/// Checks the HDF5 signature and that the file is as long as its superblock's end-of-file
/// address says (libhdf5 makes the same check), so a cut file is [`Error::DataTruncated`] rather
/// than whatever the reader trips over first.
///
/// The signature is at 0 or, after a user block, at 512, 1024, 2048, ….
fn check_hdf5_length(path: &Path) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut read_at = |offset: u64, n: usize| -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(n);
        file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
        (&mut file).take(n as u64).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
        Ok(buf)
    };

    let first = read_at(0, HDF5_SIGNATURE.len())?;
    if first.len() < HDF5_SIGNATURE.len() && HDF5_SIGNATURE.starts_with(&first) {
        return Err(Error::DataTruncated { path: path.into(), expected: HDF5_SIGNATURE.len(), found: len as usize });
    }
    let mut base = 0;
    while read_at(base, HDF5_SIGNATURE.len())? != HDF5_SIGNATURE {
        base = if base == 0 { 512 } else { base * 2 };
        if base + HDF5_SIGNATURE.len() as u64 > len {
            let mut magic = [0; 4];
            first.iter().zip(&mut magic).for_each(|(b, m)| *m = *b);
            let (found, expected) = (u32::from_be_bytes(magic), 0x8948_4446);
            let what = "HDF5 signature \\x89HDF\\r\\n\\x1a\\n";
            return Err(Error::DataMagic { path: path.into(), found, expected, what });
        }
    }

    // The end-of-file address: in superblock v0 after the offset size (byte 13) and three
    // addresses from byte 24 (28 in v1); in v2/v3 after the offset size (byte 9) and two addresses
    // from byte 12. It is relative to the base address, which libhdf5 takes to be where the
    // signature is.
    let sb = read_at(base, 64)?;
    let (size_at, eof_at) = match sb.get(8) {
        Some(0) => (13, 24),
        Some(1) => (13, 28),
        Some(2 | 3) => (9, 12),
        _ => return Ok(()), // a version this check does not know: left to the reader
    };
    let truncated =
        |need: u64| Error::DataTruncated { path: path.into(), expected: need as usize, found: len as usize };
    let Some(&size) = sb.get(size_at) else { return Err(truncated(base + size_at as u64 + 1)) };
    if !matches!(size, 2 | 4 | 8) {
        let reason = format!("HDF5 superblock gives an offset size of {size} bytes (2, 4 or 8 are valid)");
        return Err(Error::DataFormat { path: path.into(), reason });
    }
    let size = usize::from(size);
    let eof_at = eof_at + 2 * size;
    let Some(eof) = sb.get(eof_at..eof_at + size) else { return Err(truncated(base + (eof_at + size) as u64)) };
    let eof = eof.iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    let undefined = if size == 8 { u64::MAX } else { (1u64 << (8 * size)) - 1 };
    if eof != undefined && len < base.saturating_add(eof) {
        return Err(truncated(base.saturating_add(eof)));
    }
    Ok(())
}

fn open_dataset(file: &H5File, path: &Path, name: &str) -> Result<H5Dataset> {
    file.dataset(name).map_err(|e| match e {
        Hdf5Error::NotFound(_) => {
            let mut names = file.dataset_names();
            names.sort();
            let reason = format!(
                "no dataset `{name}`; expected groups `train` and `test`, each with `data` and `target`; \
                 the file holds: {}",
                if names.is_empty() { "no datasets".to_string() } else { names.join(", ") }
            );
            Error::DataFormat { path: path.into(), reason }
        }
        e => hdf5_error(&path.join(name), "cannot open the dataset", e),
    })
}

/// Reads any integer or float dataset as `f64`, whatever its width and byte order.
fn read_numbers(ds: &H5Dataset, path: &Path) -> Result<Vec<f64>> {
    macro_rules! read {
        ($t:ty) => {
            ds.read_raw::<$t>().map(|v| v.into_iter().map(|x| x as f64).collect())
        };
    }
    let datatype = ds.datatype().map_err(|e| hdf5_error(path, "cannot read the datatype", e))?;
    let values = match datatype {
        DatatypeMessage::FloatingPoint { size: 4, .. } => read!(f32),
        DatatypeMessage::FloatingPoint { size: 8, .. } => read!(f64),
        DatatypeMessage::FixedPoint { size, signed, .. } => match (size, signed) {
            (1, true) => read!(i8),
            (1, false) => read!(u8),
            (2, true) => read!(i16),
            (2, false) => read!(u16),
            (4, true) => read!(i32),
            (4, false) => read!(u32),
            (8, true) => read!(i64),
            (8, false) => read!(u64),
            _ => return Err(not_numeric(path, &format!("{size}-byte integers"))),
        },
        DatatypeMessage::FloatingPoint { size, .. } => return Err(not_numeric(path, &format!("{size}-byte floats"))),
        other => return Err(not_numeric(path, &format!("{other:?}"))),
    };
    values.map_err(|e| hdf5_error(path, "cannot read the data", e))
}

fn not_numeric(path: &Path, what: &str) -> Error {
    let reason = format!("holds {what}; expected 1-, 2-, 4- or 8-byte integers or 4- or 8-byte floats");
    Error::DataFormat { path: path.into(), reason }
}

/// A reader error: an OS error stays [`Error::Io`], a malformed file is [`Error::DataFormat`].
fn hdf5_error(path: &Path, what: &str, e: Hdf5Error) -> Error {
    match e {
        Hdf5Error::Io(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => Error::io(path, source),
        e => Error::DataFormat { path: path.into(), reason: format!("{what}: corrupt or unsupported HDF5: {e}") },
    }
}

// === libsvm text ===

/// Reads a libsvm USPS file, raw or bzip2. A bzip2 file is decompressed whole before parsing, so
/// a corrupt one fails its CRC check rather than on the garbage it decodes to.
fn read_libsvm(path: &Path) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    if !reader.fill_buf().map_err(|e| Error::io(path, e))?.starts_with(BZIP2_MAGIC) {
        return parse_libsvm(path, reader);
    }
    let mut text = Vec::new();
    MultiBzDecoder::new(reader)
        .read_to_end(&mut text)
        .map_err(|e| format_error(path, format!("corrupt bzip2 stream: {e}")))?;
    parse_libsvm(path, text.as_slice())
}

/// Parses libsvm lines into 16×16 images; blank lines are skipped.
fn parse_libsvm(path: &Path, mut src: impl BufRead) -> Result<Dataset> {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let mut line = Vec::new();
    let mut line_no = 0;
    loop {
        line.clear();
        let n = src.read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let at = |reason: String| format_error(path, format!("line {line_no}: {reason}"));
        let text = std::str::from_utf8(&line).map_err(|_| at("not UTF-8 text".into()))?;
        let mut tokens = text.split_ascii_whitespace();
        let Some(label) = tokens.next() else { continue };
        let label: i64 = label.parse().map_err(|_| at(format!("label {label:?} is not an integer")))?;
        if !(1..=CLASSES as i64).contains(&label) {
            return Err(at(format!("label {label} is outside 1..=10 (libsvm USPS labels are the digit + 1)")));
        }

        // Absent indices have the value 0, i.e. the pixel 0.5.
        let mut image = [0.5f32; PIXELS];
        let mut seen = [false; PIXELS];
        for token in tokens {
            let bad = || at(format!("bad token {token:?}, expected index:value"));
            let (index, value) = token.split_once(':').ok_or_else(bad)?;
            let index: usize = index.parse().map_err(|_| bad())?;
            let value: f32 = value.parse().map_err(|_| bad())?;
            if !(1..=PIXELS).contains(&index) {
                return Err(at(format!("index {index} is outside 1..={PIXELS}")));
            }
            if !value.is_finite() {
                return Err(at(format!("value {value} at index {index} is not finite")));
            }
            if std::mem::replace(&mut seen[index - 1], true) {
                return Err(at(format!("index {index} appears twice")));
            }
            image[index - 1] = ((value + 1.0) / 2.0).clamp(0.0, 1.0);
        }
        images.extend_from_slice(&image);
        labels.push(label as u32 - 1);
    }
    Ok(Dataset { images, labels, channels: 1, height: SIDE, width: SIDE, classes: CLASSES })
}

fn format_error(path: &Path, reason: String) -> Error {
    Error::DataFormat { path: PathBuf::from(path), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dataset> {
        parse_libsvm(Path::new("mem"), text.as_bytes())
    }

    #[test]
    fn libsvm_maps_values_and_absent_indices() {
        let ds = parse("3 1:-1 2:1 256:0.5\n\n10 3:0\n").unwrap();
        assert_eq!(ds.labels, [2, 9]);
        assert_eq!(ds.images.len(), 2 * PIXELS);
        assert_eq!(ds.images[..3], [0.0, 1.0, 0.5]);
        assert_eq!(ds.images[255], 0.75);
        // Absent indices are 0 → 0.5.
        assert!(ds.images[PIXELS..].iter().all(|&p| p == 0.5));
    }

    #[test]
    fn libsvm_clamps_slightly_out_of_range_values() {
        let ds = parse("1 1:-1.0000001 2:1.5").unwrap();
        assert_eq!(ds.images[..2], [0.0, 1.0]);
    }

    #[test]
    fn libsvm_errors_name_the_line() {
        for (text, want) in [
            ("1 1:0\nx 1:0", "line 2: label \"x\""),
            ("0 1:0", "outside 1..=10"),
            ("11 1:0", "outside 1..=10"),
            ("1 1:0 2-0", "bad token \"2-0\""),
            ("1 1:zero", "bad token"),
            ("1 0:0", "index 0 is outside"),
            ("1 257:0", "index 257 is outside"),
            ("1 4:1 4:1", "index 4 appears twice"),
            ("1 4:NaN", "not finite"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(&err, Error::DataFormat { reason, .. } if reason.contains(want)), "{text:?}: {err}");
        }
    }

    #[test]
    fn empty_text_is_an_empty_dataset() {
        let ds = parse("\n  \n").unwrap();
        assert!(ds.is_empty() && ds.images.is_empty());
    }
}
