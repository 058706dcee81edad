//! SVHN cropped digits (format 2): 3×32×32 colour images in `[0, 1]`, 10 classes, from
//! `<data_dir>/svhn/train_32x32.mat` and `test_32x32.mat`.
//!
//! Each file is a MATLAB v5 MAT-file with two variables: `X`, `uint8` of size `32×32×3×N`, stored
//! column-major as MATLAB does (element `(r, c, ch, n)` at `r + 32·(c + 32·(ch + 3·n))`), and `y`,
//! `N×1` labels `1..=10` of any numeric class, where **10 is the digit 0**. They come out NCHW,
//! pixels divided by 255, labels `y mod 10`. Other variables are skipped.
//!
//! A MAT v5 file is a 128-byte header (text starting `MATLAB 5.0 MAT-file`, then at byte 124 the
//! version `0x0100` and the endian indicator `IM` for little-endian or `MI` for big-endian
//! files), then data elements: an 8-byte tag (`u32` type, `u32` byte count) and the payload padded
//! to 8 bytes, or, for payloads of at most 4 bytes, the "small element" form that packs count,
//! type and payload into 8 bytes. A variable is an `miMATRIX` element (array flags, dimensions,
//! name, real part), stored as is or inside an `miCOMPRESSED` element (a zlib stream, the MATLAB v7
//! default). Both are read; MATLAB v7.3 files (HDF5) are not.
//!
//! Errors about one variable name it as `<file>/X` or `<file>/y`. A label outside `1..=10` is an
//! [`Error::DataFormat`] giving its index and value, since the file's encoding, not the digit,
//! is out of range.
//!
//! ```
//! use goldpan_core::data::{load, Split};
//! // A little-endian MAT v5 file by hand: elements are (type, byte count, payload padded to 8).
//! let el = |kind: u32, data: &[u8]| {
//!     let mut v = [kind.to_le_bytes(), (data.len() as u32).to_le_bytes()].concat();
//!     v.extend(data);
//!     v.resize(v.len().next_multiple_of(8), 0);
//!     v
//! };
//! // miMATRIX (14): flags (miUINT32) with the class, dims (miINT32), name (miINT8), real part.
//! let var = |name: &str, class: u32, dims: &[i32], kind: u32, data: &[u8]| {
//!     let dims: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
//!     let flags = [class.to_le_bytes(), [0; 4]].concat();
//!     el(14, &[el(6, &flags), el(5, &dims), el(1, name.as_bytes()), el(kind, data)].concat())
//! };
//! let mut file = b"MATLAB 5.0 MAT-file".to_vec();
//! file.resize(124, b' ');
//! file.extend([0, 1, b'I', b'M']);
//! // One image (MATLAB drops the trailing 1 of 32×32×3×1), uint8, column-major: pixel = row.
//! let x: Vec<u8> = (0..32 * 3).flat_map(|_| 0..32u8).collect();
//! file.extend(var("X", 9, &[32, 32, 3], 2, &x));
//! file.extend(var("y", 6, &[1, 1], 9, &10.0f64.to_le_bytes())); // double 10: the digit 0
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("svhn")).unwrap();
//! std::fs::write(dir.path().join("svhn/train_32x32.mat"), file).unwrap();
//! let ds = load("svhn", dir.path(), Split::Train).unwrap();
//! assert_eq!((ds.len(), ds.channels, ds.height, ds.width, ds.labels[0]), (1, 3, 32, 32, 0));
//! // NCHW: channel 1, row 5, column 7.
//! assert_eq!(ds.images[1024 + 5 * 32 + 7], 5.0 / 255.0);
//! ```
use super::{Dataset, Split};
use crate::error::{Error, Result};
use flate2::bufread::ZlibDecoder;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const CHANNELS: usize = 3;
const CLASSES: usize = 10;
const HEADER_LEN: usize = 128;
const HEADER_TEXT: &[u8] = b"MATLAB 5.0 MAT-file";
const VERSION: u16 = 0x0100;

// Data element types.
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;

/// Array classes `mxDOUBLE_CLASS` (6) to `mxUINT64_CLASS` (15) are the numeric ones.
const NUMERIC_CLASSES: std::ops::RangeInclusive<u8> = 6..=15;
const COMPLEX_FLAG: u32 = 0x0800;

/// Loads `split` from `dir` (`<data_dir>/svhn`).
pub(super) fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let path = dir.join(match split {
        Split::Train => "train_32x32.mat",
        Split::Test => "test_32x32.mat",
    });
    if !path.is_file() {
        let mut tried = path.display().to_string();
        if !dir.is_dir() {
            tried += &format!("; {} is not a directory", dir.display());
        }
        return Err(Error::DataNotFound { path, tried });
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    decode(&path, &bytes)
}

/// Decodes the bytes of an SVHN MAT-file.
fn decode(path: &Path, bytes: &[u8]) -> Result<Dataset> {
    let mat = MatReader { path, endian: header(path, bytes)? };
    let (mut images, mut labels) = (None, None);
    let mut names = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let tag = mat.tag(bytes, pos).map_err(|need| truncated(path, need, bytes.len()))?;
        let inflated;
        let (matrix, at) = match tag.kind {
            MI_MATRIX => (&bytes[tag.data.clone()], format!("the variable at byte {pos}")),
            MI_COMPRESSED => {
                let at = format!("the compressed variable at byte {pos}");
                inflated = inflate(path, &bytes[tag.data.clone()], &at)?;
                let inner = mat.tag(&inflated, 0).map_err(|need| {
                    let reason = format!("{at} inflates to {} bytes, its element needs {need}", inflated.len());
                    format_error(path, reason)
                })?;
                if inner.kind != MI_MATRIX {
                    let reason = format!("{at} holds an element of type {}, expected miMATRIX (14)", inner.kind);
                    return Err(format_error(path, reason));
                }
                (&inflated[inner.data], at)
            }
            kind => {
                let reason =
                    format!("element of type {kind} at byte {pos}, expected miMATRIX (14) or miCOMPRESSED (15)");
                return Err(format_error(path, reason));
            }
        };
        let var = mat.matrix(matrix, &at)?;
        match var.name.as_str() {
            "X" => images = Some(mat.images(&var)?),
            "y" => labels = Some(mat.labels(&var)?),
            _ => {}
        }
        names.push(var.name);
        pos = tag.next;
    }

    let missing = |name: &str| {
        let held = if names.is_empty() { "nothing".to_string() } else { names.join(", ") };
        format_error(path, format!("no variable `{name}` (SVHN files hold `X` and `y`); the file holds {held}"))
    };
    let (count, images) = images.ok_or_else(|| missing("X"))?;
    let labels = labels.ok_or_else(|| missing("y"))?;
    if labels.len() != count {
        return Err(Error::DataCountMismatch { path: path.into(), images: count, labels: labels.len() });
    }
    Ok(Dataset { images, labels, channels: CHANNELS, height: SIDE, width: SIDE, classes: CLASSES })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// Checks the 128-byte header and returns the file's byte order.
fn header(path: &Path, bytes: &[u8]) -> Result<Endian> {
    // The text first: a short file that is not a MAT-file is a wrong file, not a truncated one.
    let text = &bytes[..bytes.len().min(HEADER_TEXT.len())];
    if !HEADER_TEXT.starts_with(text) {
        if bytes.starts_with(b"MATL") {
            let reason = match bytes.starts_with(b"MATLAB 7.3") {
                true => "a MATLAB v7.3 (HDF5) MAT-file; only v5 to v7 MAT-files are read (SVHN's are v5)".to_string(),
                false => {
                    let shown = String::from_utf8_lossy(text);
                    format!("header text starts {shown:?}, expected \"MATLAB 5.0 MAT-file\"")
                }
            };
            return Err(format_error(path, reason));
        }
        let mut magic = [0; 4];
        text.iter().zip(&mut magic).for_each(|(b, m)| *m = *b);
        let (found, expected) = (u32::from_be_bytes(magic), u32::from_be_bytes(*b"MATL"));
        return Err(Error::DataMagic { path: path.into(), found, expected, what: "MAT-file header \"MATLAB 5.0\"" });
    }
    let Some(tail) = bytes.get(124..HEADER_LEN) else {
        return Err(truncated(path, HEADER_LEN, bytes.len()));
    };
    let endian = match &tail[2..4] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            let reason = format!("endian indicator {other:?} at byte 126, expected \"IM\" or \"MI\"");
            return Err(format_error(path, reason));
        }
    };
    let version = match endian {
        Endian::Little => u16::from_le_bytes([tail[0], tail[1]]),
        Endian::Big => u16::from_be_bytes([tail[0], tail[1]]),
    };
    if version != VERSION {
        return Err(format_error(path, format!("MAT-file version 0x{version:04x}, expected 0x0100 (v5)")));
    }
    Ok(endian)
}

/// Inflates an `miCOMPRESSED` payload.
fn inflate(path: &Path, data: &[u8], at: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4));
    ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| format_error(path, format!("{at}: corrupt zlib stream: {e}")))?;
    Ok(out)
}

/// A data element: its type, its payload's range in the buffer, and where the next one starts.
struct Tag {
    kind: u32,
    data: Range<usize>,
    next: usize,
}

/// A variable: name, class, dimensions and, for numeric classes, the type and bytes of its real part.
struct Matrix<'a> {
    name: String,
    dims: Vec<usize>,
    real_kind: u32,
    real: &'a [u8],
}

struct MatReader<'a> {
    path: &'a Path,
    endian: Endian,
}

impl MatReader<'_> {
    fn u32(&self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    /// The element at `pos` of `buf`, or `Err(n)`: the buffer would need `n` bytes to hold it.
    /// Payloads are padded to 8 bytes, except that of `miCOMPRESSED`, which MATLAB does not pad.
    fn tag(&self, buf: &[u8], pos: usize) -> std::result::Result<Tag, usize> {
        let head = buf.get(pos..pos + 8).ok_or(pos + 8)?;
        let first = self.u32(&head[..4]);
        if first >> 16 != 0 {
            // Small element: count in the high half, type in the low half, payload in bytes 4..8.
            let (kind, len) = (first & 0xffff, (first >> 16) as usize);
            let len = len.min(4);
            return Ok(Tag { kind, data: pos + 4..pos + 4 + len, next: pos + 8 });
        }
        let len = self.u32(&head[4..]) as usize;
        let end = (pos + 8).checked_add(len).ok_or(usize::MAX)?;
        if end > buf.len() {
            return Err(end);
        }
        let next = if first == MI_COMPRESSED { end } else { end.next_multiple_of(8) };
        Ok(Tag { kind: first, data: pos + 8..end, next })
    }

    /// Splits an `miMATRIX` payload into flags, dimensions, name and real part. `at` says where
    /// it is, for errors.
    fn matrix<'b>(&self, m: &'b [u8], at: &str) -> Result<Matrix<'b>> {
        let bad = |reason: String| format_error(self.path, format!("{at}: {reason}"));
        let mut pos = 0;
        let mut next = |what: &str, kinds: &[u32]| -> Result<&'b [u8]> {
            let tag = self.tag(m, pos).map_err(|_| bad(format!("the matrix ends inside its {what}")))?;
            if !kinds.contains(&tag.kind) {
                return Err(bad(format!("{what} has element type {}, expected {kinds:?}", tag.kind)));
            }
            pos = tag.next;
            Ok(&m[tag.data])
        };
        let flags = next("array flags", &[MI_UINT32])?;
        if flags.len() < 8 {
            return Err(bad(format!("array flags of {} bytes, expected 8", flags.len())));
        }
        let flags = self.u32(flags);
        let dims = next("dimensions", &[MI_INT32])?;
        if dims.len() % 4 != 0 || dims.len() < 8 {
            return Err(bad(format!("dimensions of {} bytes, expected 4 per dimension and at least 2", dims.len())));
        }
        let dims = dims.chunks_exact(4).map(|d| self.u32(d) as i32).collect::<Vec<_>>();
        if dims.iter().any(|&d| d < 0) {
            return Err(bad(format!("negative dimension in {dims:?}")));
        }
        let dims = dims.into_iter().map(|d| d as usize).collect();
        let name = String::from_utf8_lossy(next("name", &[MI_INT8, MI_UTF8])?).into_owned();

        let class = (flags & 0xff) as u8;
        let numeric = NUMERIC_CLASSES.contains(&class) && flags & COMPLEX_FLAG == 0;
        if !numeric {
            if name == "X" || name == "y" {
                let what = if flags & COMPLEX_FLAG != 0 { "complex" } else { class_name(class) };
                return Err(Error::DataFormat {
                    path: self.path.join(&name),
                    reason: format!("{at} is {what}, expected a real numeric array"),
                });
            }
            return Ok(Matrix { name, dims, real_kind: 0, real: &[] });
        }
        let kinds =
            [MI_INT8, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32, MI_SINGLE, MI_DOUBLE, MI_INT64, MI_UINT64];
        let tag = self.tag(m, pos).map_err(|_| bad(format!("`{name}`: the matrix ends inside its real part")))?;
        if !kinds.contains(&tag.kind) {
            return Err(bad(format!("`{name}`: real part has element type {}, expected a number type", tag.kind)));
        }
        Ok(Matrix { name, dims, real_kind: tag.kind, real: &m[tag.data] })
    }

    /// `X` as NCHW `f32` in `[0, 1]`, and its image count.
    fn images(&self, x: &Matrix) -> Result<(usize, Vec<f32>)> {
        let path = self.path.join("X");
        let bad = |reason: String| Error::DataFormat { path: path.clone(), reason };
        // MATLAB drops trailing singleton dimensions: one image is 32×32×3.
        let count = match x.dims.as_slice() {
            &[SIDE, SIDE, CHANNELS] => 1,
            &[SIDE, SIDE, CHANNELS, n] => n,
            [_, _, _] | [_, _, _, _] => {
                return Err(bad(format!("size {}, expected 32×32×3×N", size(&x.dims))));
            }
            other => return Err(Error::DataDims { path: path.clone(), found: other.len(), expected: 4 }),
        };
        if x.real_kind != MI_UINT8 {
            let reason = format!("pixels stored as {}, expected miUINT8 (uint8)", type_name(x.real_kind));
            return Err(bad(reason));
        }
        let per_image = SIDE * SIDE * CHANNELS;
        let needed = count.saturating_mul(per_image);
        if x.real.len() != needed {
            let reason = format!("size {} needs {needed} bytes, the data holds {}", size(&x.dims), x.real.len());
            return Err(bad(reason));
        }
        // MATLAB's (r, c, ch, n) is at r + 32·(c + 32·(ch + 3·n)); NCHW wants n, ch, r, c.
        let mut images = vec![0.0f32; x.real.len()];
        for (src, dst) in x.real.chunks_exact(SIDE * SIDE).zip(images.chunks_exact_mut(SIDE * SIDE)) {
            for (c, column) in src.chunks_exact(SIDE).enumerate() {
                for (r, &p) in column.iter().enumerate() {
                    dst[r * SIDE + c] = f32::from(p) / 255.0;
                }
            }
        }
        Ok((count, images))
    }

    /// `y` as digits: 10 becomes 0.
    fn labels(&self, y: &Matrix) -> Result<Vec<u32>> {
        let path = self.path.join("y");
        let bad = |reason: String| Error::DataFormat { path: path.clone(), reason };
        let count = match y.dims.as_slice() {
            &[n, 1] | &[1, n] => n,
            _ => return Err(bad(format!("size {}, expected N×1", size(&y.dims)))),
        };
        let values = self.numbers(y.real_kind, y.real);
        if values.len() != count || y.real.len() != count.saturating_mul(type_size(y.real_kind)) {
            let reason =
                format!("size {} but the data holds {} {} values", size(&y.dims), values.len(), type_name(y.real_kind));
            return Err(bad(reason));
        }
        values
            .iter()
            .enumerate()
            .map(|(index, &v)| match v.fract() == 0.0 && (1.0..=CLASSES as f64).contains(&v) {
                true => Ok(v as u32 % CLASSES as u32),
                false => Err(bad(format!("label {v} at index {index} is outside 1..=10 (SVHN's 10 is the digit 0)"))),
            })
            .collect()
    }

    /// Decodes a numeric payload; a trailing partial element is dropped (the caller checks counts).
    fn numbers(&self, kind: u32, b: &[u8]) -> Vec<f64> {
        macro_rules! decode {
            ($t:ty) => {{
                const N: usize = std::mem::size_of::<$t>();
                b.chunks_exact(N)
                    .map(|c| {
                        let c: [u8; N] = c.try_into().unwrap_or([0; N]);
                        (match self.endian {
                            Endian::Little => <$t>::from_le_bytes(c),
                            Endian::Big => <$t>::from_be_bytes(c),
                        }) as f64
                    })
                    .collect()
            }};
        }
        match kind {
            MI_INT8 => decode!(i8),
            MI_UINT8 => decode!(u8),
            MI_INT16 => decode!(i16),
            MI_UINT16 => decode!(u16),
            MI_INT32 => decode!(i32),
            MI_UINT32 => decode!(u32),
            MI_SINGLE => decode!(f32),
            MI_DOUBLE => decode!(f64),
            MI_INT64 => decode!(i64),
            MI_UINT64 => decode!(u64),
            _ => Vec::new(),
        }
    }
}

/// `32×32×3×5`.
fn size(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

fn type_name(kind: u32) -> &'static str {
    match kind {
        MI_INT8 => "miINT8",
        MI_UINT8 => "miUINT8",
        MI_INT16 => "miINT16",
        MI_UINT16 => "miUINT16",
        MI_INT32 => "miINT32",
        MI_UINT32 => "miUINT32",
        MI_SINGLE => "miSINGLE",
        MI_DOUBLE => "miDOUBLE",
        MI_INT64 => "miINT64",
        MI_UINT64 => "miUINT64",
        _ => "an unknown type",
    }
}

fn type_size(kind: u32) -> usize {
    match kind {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        _ => 8,
    }
}

fn class_name(class: u8) -> &'static str {
    match class {
        1 => "a cell array",
        2 => "a struct",
        3 => "an object",
        4 => "a char array",
        5 => "a sparse array",
        _ => "an array of unknown class",
    }
}

fn truncated(path: &Path, expected: usize, found: usize) -> Error {
    Error::DataTruncated { path: path.into(), expected, found }
}

fn format_error(path: &Path, reason: String) -> Error {
    Error::DataFormat { path: PathBuf::from(path), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(endian: Endian) -> MatReader<'static> {
        MatReader { path: Path::new("mem"), endian }
    }

    #[test]
    fn small_elements_pack_count_type_and_payload() {
        // Little-endian: count 1, type miINT8, payload "X" padded.
        let buf = [1, 0, 1, 0, b'X', 0, 0, 0];
        let tag = reader(Endian::Little).tag(&buf, 0).ok().unwrap();
        assert_eq!((tag.kind, tag.data, tag.next), (MI_INT8, 4..5, 8));
        let buf = [0, 1, 0, 1, b'y', 0, 0, 0];
        let tag = reader(Endian::Big).tag(&buf, 0).ok().unwrap();
        assert_eq!((tag.kind, tag.data, tag.next), (MI_INT8, 4..5, 8));
    }

    #[test]
    fn payloads_are_padded_except_compressed() {
        let mut buf = vec![MI_UINT8 as u8, 0, 0, 0, 5, 0, 0, 0];
        buf.extend([0; 8]);
        let tag = reader(Endian::Little).tag(&buf, 0).ok().unwrap();
        assert_eq!((tag.data, tag.next), (8..13, 16));
        buf[0] = MI_COMPRESSED as u8;
        assert_eq!(reader(Endian::Little).tag(&buf, 0).ok().unwrap().next, 13);
    }

    #[test]
    fn overrunning_tag_says_how_many_bytes_it_needs() {
        let buf = [MI_MATRIX as u8, 0, 0, 0, 100, 0, 0, 0, 1, 2];
        assert_eq!(reader(Endian::Little).tag(&buf, 0).err(), Some(108));
        assert_eq!(reader(Endian::Little).tag(&buf[..5], 0).err(), Some(8));
    }

    #[test]
    fn numbers_honour_endianness() {
        let le = reader(Endian::Little).numbers(MI_DOUBLE, &10.0f64.to_le_bytes());
        let be = reader(Endian::Big).numbers(MI_DOUBLE, &10.0f64.to_be_bytes());
        assert_eq!((le, be), (vec![10.0], vec![10.0]));
        assert_eq!(reader(Endian::Big).numbers(MI_INT16, &[0xff, 0xfe, 0, 3]), [-2.0, 3.0]);
    }

    #[test]
    fn header_checks() {
        let mut h = [b' '; HEADER_LEN];
        h[..HEADER_TEXT.len()].copy_from_slice(HEADER_TEXT);
        h[124..].copy_from_slice(&[0, 1, b'I', b'M']);
        assert_eq!(header(Path::new("m"), &h).unwrap(), Endian::Little);
        h[124..].copy_from_slice(&[1, 0, b'M', b'I']);
        assert_eq!(header(Path::new("m"), &h).unwrap(), Endian::Big);
        h[126..].copy_from_slice(b"XX");
        assert!(matches!(header(Path::new("m"), &h), Err(Error::DataFormat { .. })));
        assert!(matches!(header(Path::new("m"), &h[..50]), Err(Error::DataTruncated { expected: 128, found: 50, .. })));
        assert!(matches!(header(Path::new("m"), b"MATLAB 5"), Err(Error::DataTruncated { .. })));
        assert!(matches!(header(Path::new("m"), b"\x89PNG\r\n"), Err(Error::DataMagic { found: 0x8950_4e47, .. })));
    }
}
