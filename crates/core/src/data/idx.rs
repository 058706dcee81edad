//! IDX files (the MNIST format), raw or gzip-compressed, decoded to bytes.
//!
//! An IDX file is a big-endian `u32` magic `0x0000TTDD` (`TT` the element type, `08` = `u8`;
//! `DD` the number of dimensions), one big-endian `u32` per dimension, then the elements in
//! row-major order. Images are `0x00000803` with `count × rows × cols`; labels are `0x00000801`
//! with `count`. A file starting with the gzip magic `1f 8b` is decompressed first, whatever its
//! name: raw IDX always starts with `00 00`, so the two cannot be confused.
//!
//! ```
//! use goldpan_core::data::{read_idx_images, read_idx_labels};
//! let dir = tempfile::tempdir().unwrap();
//! let images = dir.path().join("images");
//! // 2 images of 1×3 pixels.
//! std::fs::write(&images, [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 1, 2, 253, 254, 255]).unwrap();
//! let idx = read_idx_images(&images).unwrap();
//! assert_eq!((idx.count, idx.rows, idx.cols), (2, 1, 3));
//! assert_eq!(idx.pixels, [0, 1, 2, 253, 254, 255]);
//!
//! let labels = dir.path().join("labels");
//! std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 2, 7, 3]).unwrap();
//! assert_eq!(read_idx_labels(&labels).unwrap(), [7, 3]);
//! ```
use crate::error::{Error, Result};
use flate2::bufread::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const TYPE_U8: u8 = 0x08;
/// What is reserved for a gzip payload per compressed byte before reading; MNIST compresses
/// about 5:1, and a larger payload just grows the buffer.
const GZIP_RESERVE_RATIO: usize = 8;

/// The images of an IDX image file: `count` images of `rows × cols` bytes, image after image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count × rows × cols` pixels, 0 = background, 255 = ink in MNIST.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (magic `0x00000803`), raw or gzip.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let ([count, rows, cols], pixels) = decode_bytes(path, &read(path)?, "IDX images: u8, 3 dimensions")?;
    if count > 0 && (rows == 0 || cols == 0) {
        return Err(format_error(path, format!("images of {rows}×{cols} pixels")));
    }
    Ok(IdxImages { count, rows, cols, pixels })
}

/// Reads an IDX label file (magic `0x00000801`), raw or gzip, one byte per label.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let ([_count], labels) = decode_bytes(path, &read(path)?, "IDX labels: u8, 1 dimension")?;
    Ok(labels)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// The magic of a `u8` IDX file with `dims` dimensions.
const fn magic(dims: usize) -> u32 {
    (TYPE_U8 as u32) << 8 | dims as u32
}

/// Decodes the bytes of a raw or gzip IDX file of `N` dimensions into its sizes and payload.
fn decode_bytes<const N: usize>(path: &Path, bytes: &[u8], what: &'static str) -> Result<([usize; N], Vec<u8>)> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let reserve = bytes.len().saturating_mul(GZIP_RESERVE_RATIO);
        decode(path, MultiGzDecoder::new(bytes), what, reserve)
    } else {
        decode(path, bytes, what, bytes.len())
    }
}

/// Decodes an IDX stream. At most `reserve` bytes are reserved before reading, so a header that
/// promises gigabytes allocates only what the stream really holds before it is found truncated.
///
/// Reading a byte slice cannot fail, so every read error comes from the gzip decoder.
fn decode<const N: usize>(
    path: &Path,
    mut src: impl Read,
    what: &'static str,
    reserve: usize,
) -> Result<([usize; N], Vec<u8>)> {
    let header_len = 4 + 4 * N;
    let mut header = Vec::with_capacity(header_len);
    read_at_most(path, &mut src, header_len, &mut header)?;
    let truncated_header = |found| Error::DataTruncated { path: path.into(), expected: header_len, found };

    // Magic first: a short file with the wrong magic is a wrong file, not a truncated one.
    let Some(&[zero0, zero1, elem, dims]) = header.first_chunk::<4>() else {
        return Err(truncated_header(header.len()));
    };
    if zero0 != 0 || zero1 != 0 {
        let found = u32::from_be_bytes([zero0, zero1, elem, dims]);
        return Err(Error::DataMagic { path: path.into(), found, expected: magic(N), what });
    }
    if elem != TYPE_U8 {
        let name = type_name(elem).unwrap_or("unknown");
        return Err(format_error(path, format!("element type 0x{elem:02x} ({name}), expected 0x08 (u8)")));
    }
    if usize::from(dims) != N {
        return Err(Error::DataDims { path: path.into(), found: dims.into(), expected: N });
    }
    if header.len() < header_len {
        return Err(truncated_header(header.len()));
    }

    let mut sizes = [0usize; N];
    for (size, be) in sizes.iter_mut().zip(header[4..].chunks_exact(4)) {
        *size = u32::from_be_bytes([be[0], be[1], be[2], be[3]]) as usize;
    }
    let Some(len) = sizes.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        return Err(format_error(path, format!("sizes {sizes:?} overflow the address space")));
    };

    let mut payload = Vec::with_capacity(len.min(reserve));
    read_at_most(path, &mut src, len, &mut payload)?;
    if payload.len() < len {
        return Err(Error::DataTruncated { path: path.into(), expected: len, found: payload.len() });
    }
    // Reading to the end also makes the gzip decoder check its CRC and length trailer.
    if read_at_most(path, &mut src, 1, &mut Vec::with_capacity(1))? > 0 {
        return Err(format_error(path, format!("trailing data after the {len}-byte payload")));
    }
    Ok((sizes, payload))
}

/// Appends up to `n` bytes of `src` to `buf`, fewer only at the end of the stream.
fn read_at_most(path: &Path, src: &mut impl Read, n: usize, buf: &mut Vec<u8>) -> Result<usize> {
    src.take(n as u64).read_to_end(buf).map_err(|e| format_error(path, format!("corrupt gzip stream: {e}")))
}

fn format_error(path: &Path, reason: String) -> Error {
    Error::DataFormat { path: path.into(), reason }
}

/// Names of the IDX element types, for error messages.
fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn idx(magic: u32, sizes: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        sizes.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(payload);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn images(bytes: &[u8]) -> Result<([usize; 3], Vec<u8>)> {
        decode_bytes(Path::new("mem"), bytes, "images")
    }

    fn labels(bytes: &[u8]) -> Result<([usize; 1], Vec<u8>)> {
        decode_bytes(Path::new("mem"), bytes, "labels")
    }

    #[test]
    fn magic_is_type_and_dims() {
        assert_eq!(magic(3), 0x0000_0803);
        assert_eq!(magic(1), 0x0000_0801);
    }

    #[test]
    fn decodes_raw_and_gzip_alike() {
        let bytes = idx(0x0803, &[2, 2, 1], &[1, 2, 3, 4]);
        let want = ([2, 2, 1], vec![1, 2, 3, 4]);
        assert_eq!(images(&bytes).unwrap(), want);
        assert_eq!(images(&gz(&bytes)).unwrap(), want);
    }

    #[test]
    fn accepts_concatenated_gzip_members() {
        // `cat a.gz b.gz` is a valid gzip file of both contents (RFC 1952 §2.2).
        let bytes = idx(0x0801, &[3], &[4, 5, 6]);
        let two = [gz(&bytes[..5]), gz(&bytes[5..])].concat();
        assert_eq!(labels(&two).unwrap().1, [4, 5, 6]);
    }

    #[test]
    fn empty_payload_is_fine() {
        assert_eq!(labels(&idx(0x0801, &[0], &[])).unwrap(), ([0], vec![]));
    }

    #[test]
    fn wrong_magic_beats_short_header() {
        let err = images(&[0x12, 0x34, 0x56, 0x78]).unwrap_err();
        assert!(matches!(err, Error::DataMagic { found: 0x1234_5678, expected: 0x0803, .. }), "{err}");
    }

    #[test]
    fn short_magic_is_truncated() {
        let err = labels(&[0, 0, 8]).unwrap_err();
        assert!(matches!(err, Error::DataTruncated { expected: 8, found: 3, .. }), "{err}");
    }

    #[test]
    fn other_element_type_is_a_format_error() {
        let err = images(&idx(0x0d03, &[1, 1, 1], &[0; 4])).unwrap_err();
        assert!(matches!(&err, Error::DataFormat { reason, .. } if reason.contains("f32")), "{err}");
    }

    #[test]
    fn overflowing_sizes_are_rejected_without_allocating() {
        let err = images(&idx(0x0803, &[u32::MAX; 3], &[])).unwrap_err();
        assert!(matches!(&err, Error::DataFormat { reason, .. } if reason.contains("overflow")), "{err}");
    }

    #[test]
    fn huge_promise_is_truncated_not_allocated() {
        // 4 billion 28×28 images would be ~3 TB; only what the file holds is reserved.
        let bytes = idx(0x0803, &[u32::MAX, 28, 28], &[7; 10]);
        let promised = u32::MAX as usize * 784;
        let err = images(&bytes).unwrap_err();
        assert!(matches!(err, Error::DataTruncated { expected, found: 10, .. } if expected == promised), "{err}");
        let err = images(&gz(&bytes)).unwrap_err();
        assert!(matches!(err, Error::DataTruncated { expected, found: 10, .. } if expected == promised), "{err}");
    }

    #[test]
    fn trailing_bytes_are_a_format_error() {
        let mut bytes = idx(0x0801, &[2], &[1, 2]);
        bytes.push(0);
        for bytes in [bytes.clone(), gz(&bytes)] {
            let err = labels(&bytes).unwrap_err();
            assert!(matches!(&err, Error::DataFormat { reason, .. } if reason.contains("trailing")), "{err}");
        }
    }

    #[test]
    fn garbage_after_gzip_member_is_a_format_error() {
        let mut bytes = gz(&idx(0x0801, &[2], &[1, 2]));
        bytes.extend(b"junk after the gzip stream");
        let err = labels(&bytes).unwrap_err();
        assert!(matches!(err, Error::DataFormat { .. }), "{err}");
    }

    #[test]
    fn bad_crc_is_a_format_error() {
        let mut bytes = gz(&idx(0x0801, &[2], &[1, 2]));
        let crc = bytes.len() - 8;
        bytes[crc] ^= 0xff;
        let err = labels(&bytes).unwrap_err();
        assert!(matches!(&err, Error::DataFormat { reason, .. } if reason.contains("gzip")), "{err}");
    }

    #[test]
    fn cut_gzip_stream_is_a_format_error() {
        let bytes = gz(&idx(0x0801, &[100], &[3; 100]));
        for cut in [2, 3, 10, bytes.len() / 2, bytes.len() - 4, bytes.len() - 1] {
            let err = labels(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, Error::DataFormat { .. }), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn type_names() {
        assert_eq!(type_name(0x08), Some("u8"));
        assert_eq!(type_name(0x0e), Some("f64"));
        assert_eq!(type_name(0x0a), None);
    }
}
