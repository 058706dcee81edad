//! The SFDA digit datasets and SHOT's transforms: USPS from HDF5 and libsvm text, SVHN from MAT v5
//! files written here (uncompressed, compressed, big-endian, corrupt), the bundled USPS subset in
//! `data/usps/`, and the real Kaggle `usps.h5` in `shared/data/` when it is there.
use bzip2::{write::BzEncoder, Compression as BzCompression};
use flate2::{write::ZlibEncoder, Compression};
use goldpan_core::data::{augment_image, load, normalize_half, resize_bilinear, to_rgb, Dataset, Split, DATASETS};
use goldpan_core::Error;
use rust_hdf5::H5File;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn bundled() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

/// The full Kaggle `usps.h5`, if this checkout has `shared/data` beside it.
fn real_usps() -> Option<PathBuf> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/usps/usps.h5"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: no real USPS at {}", path.display());
        None
    }
}

/// A temp data dir with an empty `<dir>/<name>/`.
fn data_dir(name: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(name)).unwrap();
    dir
}

fn counts(ds: &Dataset) -> [usize; 10] {
    let mut c = [0; 10];
    ds.labels.iter().for_each(|&l| c[l as usize] += 1);
    c
}

/// Asserts `err` has `code` and its message contains every one of `parts`.
fn assert_err(err: &Error, code: &str, parts: &[&str]) {
    assert_eq!(err.code(), code, "{err}");
    let msg = err.to_string();
    for part in parts {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
}

// === USPS, HDF5 ===

/// `n` images of `width` values, all distinct and in `[0, 1]`.
fn pixels(n: usize, width: usize) -> Vec<f32> {
    let total = (n * width).max(1) as f32;
    (0..n * width).map(|i| i as f32 / total).collect()
}

/// Writes one split group: `data` (`shape`, chunked + gzip) and `target` (chunked + gzip).
fn put_split(file: &H5File, group: &str, shape: &[usize], data: &[f32], target: &[i32]) {
    let g = file.create_group(group).unwrap();
    let chunk: Vec<usize> = shape.iter().map(|&d| d.clamp(1, 4)).collect();
    let ds = g.new_dataset::<f32>().shape(shape).chunk(&chunk).deflate(4).create("data").unwrap();
    ds.write_raw(data).unwrap();
    let ds =
        g.new_dataset::<i32>().shape([target.len()]).chunk(&[target.len().max(1)]).deflate(4).create("target").unwrap();
    ds.write_raw(target).unwrap();
}

/// A data dir whose `usps/usps.h5` is what `build` writes.
fn usps_h5(build: impl FnOnce(&H5File)) -> TempDir {
    let dir = data_dir("usps");
    let file = H5File::create(dir.path().join("usps/usps.h5")).unwrap();
    build(&file);
    file.close().unwrap();
    dir
}

/// A well-formed file: 3 train images labelled 7 0 9, 2 test images labelled 1 2.
fn good_h5() -> TempDir {
    usps_h5(|f| {
        put_split(f, "train", &[3, 256], &pixels(3, 256), &[7, 0, 9]);
        put_split(f, "test", &[2, 256], &pixels(2, 256), &[1, 2]);
    })
}

fn h5_path(dir: &TempDir) -> PathBuf {
    dir.path().join("usps/usps.h5")
}

#[test]
fn registry_lists_usps_and_svhn() {
    assert!(DATASETS.contains(&"usps") && DATASETS.contains(&"svhn"));
    let err = load("usps-mnist", Path::new("."), Split::Train).unwrap_err();
    assert_err(&err, "E_CONFIG", &["usps", "svhn"]);
}

#[test]
fn h5_written_here_reads_back() {
    let dir = good_h5();
    let train = load("usps", dir.path(), Split::Train).unwrap();
    assert_eq!((train.len(), train.channels, train.height, train.width, train.classes), (3, 1, 16, 16, 10));
    assert_eq!(train.labels, [7, 0, 9]);
    assert_eq!(train.images, pixels(3, 256));
    let test = load("usps", dir.path(), Split::Test).unwrap();
    assert_eq!((test.len(), test.labels.as_slice()), (2, &[1, 2][..]));
    assert_eq!(test.images, pixels(2, 256));
}

#[test]
fn h5_other_numeric_types_and_column_targets() {
    let dir = usps_h5(|f| {
        let g = f.create_group("train").unwrap();
        let data: Vec<f64> = pixels(2, 256).into_iter().map(f64::from).collect();
        g.new_dataset::<f64>().shape([2, 256]).create("data").unwrap().write_raw(&data).unwrap();
        g.new_dataset::<u8>().shape([2, 1]).create("target").unwrap().write_raw(&[3u8, 4]).unwrap();
    });
    let ds = load("usps", dir.path(), Split::Train).unwrap();
    assert_eq!(ds.labels, [3, 4]);
    assert_eq!(ds.images, pixels(2, 256));
}

#[test]
fn h5_empty_split_is_fine() {
    let dir = usps_h5(|f| put_split(f, "train", &[0, 256], &[], &[]));
    let ds = load("usps", dir.path(), Split::Train).unwrap();
    assert!(ds.is_empty() && ds.images.is_empty());
}

#[test]
fn h5_missing_group() {
    let dir = usps_h5(|f| put_split(f, "train", &[1, 256], &pixels(1, 256), &[0]));
    let err = load("usps", dir.path(), Split::Test).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["usps.h5", "no dataset `test/data`", "train/data", "train/target"]);
    // The training split is still readable.
    assert_eq!(load("usps", dir.path(), Split::Train).unwrap().len(), 1);
}

#[test]
fn h5_missing_target() {
    let dir = usps_h5(|f| {
        let g = f.create_group("train").unwrap();
        g.new_dataset::<f32>().shape([1, 256]).create("data").unwrap().write_raw(&pixels(1, 256)).unwrap();
    });
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["no dataset `train/target`"]);
}

#[test]
fn h5_wrong_width() {
    let dir = usps_h5(|f| put_split(f, "train", &[2, 255], &pixels(2, 255), &[0, 1]));
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["usps.h5/train/data", "2×255", "N×256"]);
}

#[test]
fn h5_wrong_dims() {
    let dir = usps_h5(|f| put_split(f, "train", &[2, 16, 16], &pixels(2, 256), &[0, 1]));
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataDims { found: 3, expected: 2, .. }), "{err}");
    assert_err(&err, "E_DATA_DIMS", &["train/data"]);
}

#[test]
fn h5_label_out_of_range() {
    let dir = usps_h5(|f| put_split(f, "train", &[3, 256], &pixels(3, 256), &[9, 10, 0]));
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataLabel { index: 1, label: 10, classes: 10, .. }), "{err}");
    assert_err(&err, "E_DATA_LABEL", &["train/target"]);

    let dir = usps_h5(|f| put_split(f, "train", &[2, 256], &pixels(2, 256), &[1, -1]));
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["label -1 at index 1"]);
}

#[test]
fn h5_count_mismatch() {
    let dir = usps_h5(|f| put_split(f, "train", &[3, 256], &pixels(3, 256), &[1, 2]));
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataCountMismatch { images: 3, labels: 2, .. }), "{err}");
    assert_err(&err, "E_DATA_COUNT_MISMATCH", &["usps.h5/train"]);
}

#[test]
fn h5_pixel_out_of_range() {
    let mut data = pixels(2, 256);
    data[256 + 17] = 1.5;
    let dir = usps_h5(|f| put_split(f, "train", &[2, 256], &data, &[1, 2]));
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["value 1.5 of image 1 at row 1, column 1", "[0, 1]"]);
}

#[test]
fn h5_absurd_shape_is_refused_without_allocating() {
    // 10 million images (10 GB of float32) in chunks never written: the file is tiny.
    let n = 10_000_000;
    let dir = usps_h5(|f| {
        let g = f.create_group("train").unwrap();
        g.new_dataset::<f32>().shape([n, 256]).chunk(&[100_000, 256]).deflate(4).create("data").unwrap();
        g.new_dataset::<i32>().shape([n]).chunk(&[1_000_000]).deflate(4).create("target").unwrap();
    });
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["train/data", "promises 10240000000 bytes"]);
}

#[test]
fn h5_wrong_datatype() {
    let dir = usps_h5(|f| {
        let g = f.create_group("train").unwrap();
        g.new_dataset::<f32>().shape([1, 256]).create("data").unwrap().write_raw(&pixels(1, 256)).unwrap();
        g.write_vlen_strings("target", &["seven"]).unwrap();
    });
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert_eq!(err.code(), "E_DATA_FORMAT", "{err}");
    assert!(err.to_string().contains("train/target"), "{err}");
}

#[test]
fn h5_truncated() {
    let dir = good_h5();
    let path = h5_path(&dir);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 100] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = load("usps", dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(err, Error::DataTruncated { found, expected, .. } if found == cut && expected == bytes.len()),
            "cut at {cut}: {err}"
        );
        assert_err(&err, "E_DATA_TRUNCATED", &["usps.h5"]);
    }
    // A signature cut short.
    std::fs::write(&path, &bytes[..5]).unwrap();
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected: 8, found: 5, .. }), "{err}");
    // Empty.
    std::fs::write(&path, b"").unwrap();
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { found: 0, .. }), "{err}");
}

#[test]
fn h5_not_hdf5() {
    let dir = data_dir("usps");
    let path = dir.path().join("usps/usps.h5");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n and then some more bytes").unwrap();
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataMagic { found: 0x8950_4e47, expected: 0x8948_4446, .. }), "{err}");
    assert_err(&err, "E_DATA_MAGIC", &["usps.h5", "HDF5 signature"]);
}

#[test]
fn h5_signature_after_a_user_block() {
    // HDF5 allows a user block (512, 1024, … bytes) before the signature; like libhdf5, the
    // signature's position is taken as the base of every address.
    let dir = good_h5();
    let path = h5_path(&dir);
    let mut bytes = vec![0u8; 512];
    bytes.extend(std::fs::read(&path).unwrap());
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(load("usps", dir.path(), Split::Train).unwrap().labels, [7, 0, 9]);
    // Cut short, it is still found truncated.
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = load("usps", dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected, .. } if expected == bytes.len()), "{err}");
}

/// Flipping any byte must give a result or a typed error, never a panic.
#[test]
fn h5_corrupt_bytes_never_panic() {
    let dir = good_h5();
    let path = h5_path(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let mut errors = 0;
    for at in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&path, &bad).unwrap();
        for split in [Split::Train, Split::Test] {
            if let Err(e) = load("usps", dir.path(), split) {
                assert!(e.code().starts_with("E_DATA") || e.code() == "E_IO", "byte {at}: {e}");
                errors += 1;
            }
        }
    }
    assert!(errors > 0);
}

#[test]
fn h5_wins_over_libsvm() {
    let dir = good_h5();
    std::fs::write(dir.path().join("usps/usps"), "1 1:0\n").unwrap();
    assert_eq!(load("usps", dir.path(), Split::Train).unwrap().labels, [7, 0, 9]);
}

// === USPS, real data ===

#[test]
fn real_usps_h5() {
    let Some(path) = real_usps() else { return };
    let shared = path.parent().unwrap().parent().unwrap();
    for (split, len, want) in [
        (Split::Train, 7291, [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]),
        (Split::Test, 2007, [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]),
    ] {
        let ds = load("usps", shared, split).unwrap();
        assert_eq!((ds.len(), ds.images.len()), (len, len * 256), "{split:?}");
        assert_eq!((ds.channels, ds.height, ds.width, ds.classes), (1, 16, 16, 10));
        let c = counts(&ds);
        println!("real USPS {split:?} label counts: {c:?}");
        assert_eq!(c, want, "{split:?}");
        assert_eq!(c.iter().sum::<usize>(), len);
        assert!(ds.images.iter().all(|p| (0.0..=1.0).contains(p)));
        // Real digits: background 0, some full ink.
        assert!(ds.images.contains(&0.0) && ds.images.contains(&1.0));
    }
}

#[test]
fn bundled_usps_subset() {
    let train = load("usps", bundled(), Split::Train).unwrap();
    let test = load("usps", bundled(), Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (2000, 500));
    assert_eq!((train.channels, train.height, train.width, train.classes), (1, 16, 16, 10));
    assert_eq!(train.labels[..5], [6, 5, 4, 7, 3]);
    assert_eq!(test.labels[..5], [9, 6, 3, 6, 6]);
    assert_eq!(counts(&train), [389, 323, 220, 149, 143, 102, 166, 182, 158, 168]);
    assert_eq!(counts(&test), [119, 68, 50, 29, 34, 26, 46, 36, 44, 48]);
    assert!(train.images.iter().chain(&test.images).all(|p| (0.0..=1.0).contains(p)));

    // The subset is the real file's prefix, bit for bit.
    let Some(path) = real_usps() else { return };
    let shared = path.parent().unwrap().parent().unwrap();
    for (sub, split) in [(train, Split::Train), (test, Split::Test)] {
        let full = load("usps", shared, split).unwrap().truncate(sub.len());
        assert_eq!(full.labels, sub.labels, "{split:?}");
        assert!(full.images.iter().zip(&sub.images).all(|(a, b)| a.to_bits() == b.to_bits()), "{split:?}");
    }
}

// === USPS, libsvm text ===

fn bz2(text: &str) -> Vec<u8> {
    let mut enc = BzEncoder::new(Vec::new(), BzCompression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// A data dir with `usps/<name>` holding `bytes`.
fn libsvm_dir(name: &str, bytes: &[u8]) -> TempDir {
    let dir = data_dir("usps");
    std::fs::write(dir.path().join("usps").join(name), bytes).unwrap();
    dir
}

/// A dense libsvm line: `label` and 256 values, value `j` = `-1 + 2·j/255`.
fn dense_line(label: u32) -> String {
    let mut line = label.to_string();
    for j in 0..256 {
        line += &format!(" {}:{}", j + 1, -1.0 + 2.0 * j as f64 / 255.0);
    }
    line + "\n"
}

#[test]
fn libsvm_raw_and_bz2_alike() {
    let text = dense_line(10) + &dense_line(1) + "4 1:1 3:-0.5\n";
    for (name, bytes, split) in [
        ("usps", text.clone().into_bytes(), Split::Train),
        ("usps.bz2", bz2(&text), Split::Train),
        ("usps.t", text.clone().into_bytes(), Split::Test),
        ("usps.t.bz2", bz2(&text), Split::Test),
    ] {
        let ds = load("usps", libsvm_dir(name, &bytes).path(), split).unwrap();
        assert_eq!((ds.len(), ds.channels, ds.height, ds.width, ds.classes), (3, 1, 16, 16, 10), "{name}");
        // Labels are digit + 1.
        assert_eq!(ds.labels, [9, 0, 3], "{name}");
        // Pixels are (v + 1) / 2.
        for j in 0..256 {
            assert!((ds.images[j] - j as f32 / 255.0).abs() < 1e-6, "{name} pixel {j}");
        }
        assert_eq!(ds.images[256..512], ds.images[..256]);
        // Sparse line: index 1 → 1, index 3 → 0.25, absent ones are 0 → 0.5.
        assert_eq!(ds.images[512..515], [1.0, 0.5, 0.25]);
        assert!(ds.images[515..].iter().all(|&p| p == 0.5));
    }
}

#[test]
fn libsvm_bz2_detected_by_magic_and_raw_wins() {
    let dir = libsvm_dir("usps", &bz2("2 1:1\n"));
    assert_eq!(load("usps", dir.path(), Split::Train).unwrap().labels, [1]);
    std::fs::write(dir.path().join("usps/usps.bz2"), bz2("3 1:1\n")).unwrap();
    assert_eq!(load("usps", dir.path(), Split::Train).unwrap().labels, [1], "raw name wins");
    std::fs::remove_file(dir.path().join("usps/usps")).unwrap();
    assert_eq!(load("usps", dir.path(), Split::Train).unwrap().labels, [2]);
}

#[test]
fn libsvm_corrupt_text() {
    for (text, parts) in [
        ("1 1:0\n2 1:0 x\n", &["usps.t", "line 2", "bad token \"x\""][..]),
        ("1 1:0 2:1:0\n", &["line 1", "bad token \"2:1:0\""]),
        ("1 0:0.5\n", &["line 1", "index 0 is outside 1..=256"]),
        ("1 1:0\n\n1 257:0.5\n", &["line 3", "index 257 is outside 1..=256"]),
        ("0 1:0\n", &["line 1", "label 0 is outside 1..=10"]),
        ("11 1:0\n", &["label 11 is outside 1..=10"]),
        ("one 1:0\n", &["label \"one\" is not an integer"]),
        ("1 1:inf\n", &["not finite"]),
    ] {
        for bytes in [text.as_bytes().to_vec(), bz2(text)] {
            let err = load("usps", libsvm_dir("usps.t", &bytes).path(), Split::Test).unwrap_err();
            assert_err(&err, "E_DATA_FORMAT", parts);
        }
    }
}

#[test]
fn libsvm_corrupt_bz2() {
    let good = bz2(&(dense_line(3) + &dense_line(4)));
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x55;
    // Cut short, a flipped byte, a bare header.
    for bytes in [good[..good.len() - 10].to_vec(), flipped, b"BZh9".to_vec()] {
        let err = load("usps", libsvm_dir("usps.bz2", &bytes).path(), Split::Train).unwrap_err();
        assert_err(&err, "E_DATA_FORMAT", &["usps.bz2", "bzip2"]);
    }
}

#[test]
fn usps_not_found_names_every_file() {
    let dir = data_dir("usps");
    for (split, parts) in [
        (Split::Train, ["usps/usps.h5", "usps/usps and", "usps/usps.bz2"]),
        (Split::Test, ["usps/usps.h5", "usps/usps.t and", "usps/usps.t.bz2"]),
    ] {
        let err = load("usps", dir.path(), split).unwrap_err();
        assert_err(&err, "E_DATA_NOT_FOUND", &parts);
    }
    let err = load("usps", Path::new("/nonexistent/goldpan"), Split::Train).unwrap_err();
    assert_err(&err, "E_DATA_NOT_FOUND", &["not a directory"]);
}

// === SVHN, MAT v5 ===

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MX_CHAR: u8 = 4;
const MX_DOUBLE: u8 = 6;
const MX_UINT8: u8 = 9;

/// A MATLAB variable to write: class, dimensions, and real part (element type and bytes).
#[derive(Clone)]
struct Var {
    name: &'static str,
    class: u8,
    flags: u32,
    dims: Vec<u32>,
    kind: u32,
    data: Vec<u8>,
}

/// A minimal MAT v5 writer: header, then each variable as an `miMATRIX`, or wrapped in
/// `miCOMPRESSED`; little- or big-endian.
struct MatWriter {
    big_endian: bool,
    compressed: bool,
}

impl MatWriter {
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A data element, in the small form when the payload fits in 4 bytes, padded to 8.
    fn element(&self, kind: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if payload.len() <= 4 && kind != MI_MATRIX {
            out.extend(self.u32((payload.len() as u32) << 16 | kind));
            out.extend(payload);
            out.resize(8, 0);
            return out;
        }
        out.extend(self.u32(kind));
        out.extend(self.u32(payload.len() as u32));
        out.extend(payload);
        out.resize(out.len().next_multiple_of(8), 0);
        out
    }

    fn matrix(&self, var: &Var) -> Vec<u8> {
        let mut body = self.element(MI_UINT32, &[self.u32(var.flags | u32::from(var.class)), [0; 4]].concat());
        body.extend(self.element(MI_INT32, &var.dims.iter().flat_map(|&d| self.u32(d)).collect::<Vec<_>>()));
        body.extend(self.element(MI_INT8, var.name.as_bytes()));
        body.extend(self.element(var.kind, &var.data));
        self.element(MI_MATRIX, &body)
    }

    fn file(&self, vars: &[Var]) -> Vec<u8> {
        let mut out = b"MATLAB 5.0 MAT-file, written by goldpan's tests".to_vec();
        out.resize(116, b' ');
        out.extend([0; 8]);
        out.extend(if self.big_endian { [1, 0, b'M', b'I'] } else { [0, 1, b'I', b'M'] });
        for var in vars {
            let matrix = self.matrix(var);
            if self.compressed {
                let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
                z.write_all(&matrix).unwrap();
                let z = z.finish().unwrap();
                out.extend(self.u32(MI_COMPRESSED));
                out.extend(self.u32(z.len() as u32));
                out.extend(z);
            } else {
                out.extend(matrix);
            }
        }
        out
    }
}

/// The pixel MATLAB holds at `(r, c, ch, n)` in the test images.
fn svhn_pixel(r: usize, c: usize, ch: usize, n: usize) -> u8 {
    ((r + 2 * c + 5 * ch + 7 * n) % 256) as u8
}

/// `X` of `n` 32×32×3 images, column-major.
fn x_var(n: usize) -> Var {
    let mut data = Vec::with_capacity(n * 3072);
    for i in 0..n {
        for ch in 0..3 {
            for c in 0..32 {
                for r in 0..32 {
                    data.push(svhn_pixel(r, c, ch, i));
                }
            }
        }
    }
    Var { name: "X", class: MX_UINT8, flags: 0, dims: vec![32, 32, 3, n as u32], kind: MI_UINT8, data }
}

/// `y` as an N×1 double array.
fn y_var(labels: &[f64]) -> Var {
    let data = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
    Var { name: "y", class: MX_DOUBLE, flags: 0, dims: vec![labels.len() as u32, 1], kind: MI_DOUBLE, data }
}

fn le(compressed: bool) -> MatWriter {
    MatWriter { big_endian: false, compressed }
}

/// A data dir with `svhn/<file>` holding `bytes`.
fn svhn_dir(file: &str, bytes: &[u8]) -> TempDir {
    let dir = data_dir("svhn");
    std::fs::write(dir.path().join("svhn").join(file), bytes).unwrap();
    dir
}

fn svhn_train(bytes: &[u8]) -> Result<Dataset, Error> {
    load("svhn", svhn_dir("train_32x32.mat", bytes).path(), Split::Train)
}

fn check_svhn(ds: &Dataset, labels: &[u32]) {
    let n = labels.len();
    assert_eq!((ds.len(), ds.channels, ds.height, ds.width, ds.classes), (n, 3, 32, 32, 10));
    assert_eq!(ds.labels, labels);
    assert_eq!(ds.images.len(), n * 3072);
    for i in 0..n {
        for ch in 0..3 {
            for r in 0..32 {
                for c in 0..32 {
                    let got = ds.images[((i * 3 + ch) * 32 + r) * 32 + c];
                    assert_eq!(got, f32::from(svhn_pixel(r, c, ch, i)) / 255.0, "image {i} ch {ch} ({r}, {c})");
                }
            }
        }
    }
}

#[test]
fn svhn_uncompressed_and_compressed_alike() {
    for compressed in [false, true] {
        let bytes = le(compressed).file(&[x_var(3), y_var(&[10.0, 1.0, 5.0])]);
        check_svhn(&svhn_train(&bytes).unwrap(), &[0, 1, 5]);
    }
}

#[test]
fn svhn_test_split_and_big_endian() {
    let mut y = y_var(&[3.0, 10.0]);
    y.data = [3.0f64, 10.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    for compressed in [false, true] {
        let bytes = MatWriter { big_endian: true, compressed }.file(&[y.clone(), x_var(2)]);
        let dir = svhn_dir("test_32x32.mat", &bytes);
        check_svhn(&load("svhn", dir.path(), Split::Test).unwrap(), &[3, 0]);
    }
}

#[test]
fn svhn_labels_of_any_numeric_storage() {
    // MATLAB stores a double array of small integers as miUINT8 data; labels may also be uint8.
    let stored_small = Var { kind: MI_UINT8, data: vec![2, 10], ..y_var(&[2.0, 10.0]) };
    let uint8 = Var { class: MX_UINT8, kind: MI_UINT8, data: vec![2, 10], ..y_var(&[2.0, 10.0]) };
    let row = Var { dims: vec![1, 2], ..y_var(&[2.0, 10.0]) };
    for y in [stored_small, uint8, row] {
        check_svhn(&svhn_train(&le(true).file(&[x_var(2), y])).unwrap(), &[2, 0]);
    }
}

#[test]
fn svhn_single_image_and_extra_variables() {
    // MATLAB drops trailing singleton dimensions: one image is 32×32×3.
    let mut x = x_var(1);
    x.dims.pop();
    let note = Var { name: "note", class: MX_CHAR, flags: 0, dims: vec![1, 2], kind: 4, data: vec![b'h', 0, b'i', 0] };
    check_svhn(&svhn_train(&le(false).file(&[note, x, y_var(&[7.0])])).unwrap(), &[7]);
}

#[test]
fn svhn_not_found() {
    let dir = data_dir("svhn");
    let err = load("svhn", dir.path(), Split::Test).unwrap_err();
    assert_err(&err, "E_DATA_NOT_FOUND", &["svhn/test_32x32.mat"]);
}

#[test]
fn svhn_bad_header() {
    let err = svhn_train(b"\x89PNG\r\n\x1a\n").unwrap_err();
    assert!(matches!(err, Error::DataMagic { found: 0x8950_4e47, .. }), "{err}");
    assert_err(&err, "E_DATA_MAGIC", &["train_32x32.mat", "MATLAB 5.0"]);

    let mut v73 = le(false).file(&[]);
    v73[..19].copy_from_slice(b"MATLAB 7.3 MAT-file");
    assert_err(&svhn_train(&v73).unwrap_err(), "E_DATA_FORMAT", &["v7.3", "HDF5"]);

    let mut bad_endian = le(false).file(&[x_var(1), y_var(&[1.0])]);
    bad_endian[126..128].copy_from_slice(b"XX");
    assert_err(&svhn_train(&bad_endian).unwrap_err(), "E_DATA_FORMAT", &["endian indicator"]);

    let mut bad_version = le(false).file(&[x_var(1), y_var(&[1.0])]);
    bad_version[124..126].copy_from_slice(&[0, 2]);
    assert_err(&svhn_train(&bad_version).unwrap_err(), "E_DATA_FORMAT", &["version 0x0200"]);

    let err = svhn_train(&le(false).file(&[])[..100]).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected: 128, found: 100, .. }), "{err}");
}

#[test]
fn svhn_truncated() {
    for compressed in [false, true] {
        let bytes = le(compressed).file(&[x_var(2), y_var(&[1.0, 2.0])]);
        for cut in [130, 300, bytes.len() / 2, bytes.len() - 1] {
            let err = svhn_train(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, Error::DataTruncated { found, .. } if found == cut), "cut at {cut}: {err}");
            assert_err(&err, "E_DATA_TRUNCATED", &["train_32x32.mat"]);
        }
    }
}

#[test]
fn svhn_corrupt_zlib() {
    let mut bytes = le(true).file(&[x_var(2), y_var(&[1.0, 2.0])]);
    // Inside the zlib stream of X (its header is at 128 + 8).
    bytes[128 + 8 + 40] ^= 0xff;
    bytes[128 + 8 + 41] ^= 0xff;
    assert_err(&svhn_train(&bytes).unwrap_err(), "E_DATA_FORMAT", &["compressed variable at byte 128", "zlib"]);
}

#[test]
fn svhn_wrong_dims() {
    let x = Var { dims: vec![32, 32, 1, 3], ..x_var(1) };
    assert_err(
        &svhn_train(&le(false).file(&[x, y_var(&[1.0])])).unwrap_err(),
        "E_DATA_FORMAT",
        &["X", "32×32×1×3", "32×32×3×N"],
    );
    let x = Var { dims: vec![1024, 3], ..x_var(1) };
    let err = svhn_train(&le(true).file(&[x, y_var(&[1.0])])).unwrap_err();
    assert!(matches!(err, Error::DataDims { found: 2, expected: 4, .. }), "{err}");
    assert_err(&err, "E_DATA_DIMS", &["train_32x32.mat/X"]);
    // Dimensions that promise more than the data holds.
    let x = Var { dims: vec![32, 32, 3, 2], ..x_var(1) };
    assert_err(&svhn_train(&le(false).file(&[x, y_var(&[1.0])])).unwrap_err(), "E_DATA_FORMAT", &["needs 6144 bytes"]);
    let y = Var { dims: vec![2, 2], ..y_var(&[1.0, 2.0, 3.0, 4.0]) };
    assert_err(&svhn_train(&le(false).file(&[x_var(4), y])).unwrap_err(), "E_DATA_FORMAT", &["y", "2×2", "N×1"]);
}

#[test]
fn svhn_wrong_types() {
    let x = Var { class: MX_DOUBLE, kind: MI_DOUBLE, data: vec![0; 3072 * 8], ..x_var(1) };
    assert_err(
        &svhn_train(&le(false).file(&[x, y_var(&[1.0])])).unwrap_err(),
        "E_DATA_FORMAT",
        &["miDOUBLE", "miUINT8"],
    );
    let complex = Var { flags: 0x0800, ..x_var(1) };
    assert_err(
        &svhn_train(&le(false).file(&[complex, y_var(&[1.0])])).unwrap_err(),
        "E_DATA_FORMAT",
        &["X", "complex"],
    );
    let chars = Var { class: MX_CHAR, ..y_var(&[1.0]) };
    assert_err(&svhn_train(&le(false).file(&[x_var(1), chars])).unwrap_err(), "E_DATA_FORMAT", &["y", "char array"]);
}

#[test]
fn svhn_label_out_of_range() {
    for (labels, bad) in [
        ([1.0, 0.0, 3.0], "label 0 at index 1"),
        ([1.0, 2.0, 11.0], "label 11 at index 2"),
        ([2.5, 1.0, 1.0], "label 2.5 at index 0"),
    ] {
        let err = svhn_train(&le(true).file(&[x_var(3), y_var(&labels)])).unwrap_err();
        assert_err(&err, "E_DATA_FORMAT", &["train_32x32.mat/y", bad, "1..=10"]);
    }
}

#[test]
fn svhn_count_mismatch_and_missing_variables() {
    let err = svhn_train(&le(false).file(&[x_var(3), y_var(&[1.0, 2.0])])).unwrap_err();
    assert!(matches!(err, Error::DataCountMismatch { images: 3, labels: 2, .. }), "{err}");
    assert_err(&err, "E_DATA_COUNT_MISMATCH", &["train_32x32.mat"]);
    let err = svhn_train(&le(true).file(&[x_var(1)])).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["no variable `y`", "holds X"]);
    let err = svhn_train(&le(false).file(&[])).unwrap_err();
    assert_err(&err, "E_DATA_FORMAT", &["no variable `X`", "holds nothing"]);
}

/// Flipping any byte must give a result or a typed error, never a panic.
#[test]
fn svhn_corrupt_bytes_never_panic() {
    for compressed in [false, true] {
        let bytes = le(compressed).file(&[x_var(1), y_var(&[4.0])]);
        for at in (0..bytes.len()).step_by(3) {
            let mut bad = bytes.clone();
            bad[at] ^= 0xa5;
            if let Err(e) = svhn_train(&bad) {
                assert!(e.code().starts_with("E_DATA"), "byte {at}: {e}");
            }
        }
    }
}

// === Transforms ===

fn grey(images: Vec<f32>, h: usize, w: usize) -> Dataset {
    let n = images.len() / (h * w);
    Dataset { images, labels: vec![1; n], channels: 1, height: h, width: w, classes: 10 }
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
}

#[test]
fn resize_2x2_to_4x4_by_hand() {
    // Half-pixel centres: output i samples input (i + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25,
    // clamped to [0, 1]: weights (1, 0), (.75, .25), (.25, .75), (0, 1) along each axis.
    // a=0, b=.4 / c=.8, d=.2 → rows [0, .1, .3, .4] and [.8, .65, .35, .2], then mixed likewise.
    let ds = grey(vec![0.0, 0.4, 0.8, 0.2], 2, 2);
    let out = resize_bilinear(&ds, 4, 4).unwrap();
    assert_eq!((out.len(), out.channels, out.height, out.width, out.labels.as_slice()), (1, 1, 4, 4, &[1][..]));
    #[rustfmt::skip]
    let want = [
        0.0, 0.1, 0.3, 0.4,
        0.2, 0.2375, 0.3125, 0.35,
        0.6, 0.5125, 0.3375, 0.25,
        0.8, 0.65, 0.35, 0.2,
    ];
    assert!(close(&out.images, &want), "{:?}", out.images);
}

/// Bilinear interpolation with half-pixel centres and clamped coordinates, per pixel.
fn bilinear_reference(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let coord = |o: usize, n: usize, on: usize| {
        let s = ((o as f64 + 0.5) * n as f64 / on as f64 - 0.5).clamp(0.0, (n - 1) as f64);
        let i = (s.floor() as usize).min(n - 1);
        (i, (i + 1).min(n - 1), (s - i as f64) as f32)
    };
    let mut out = Vec::new();
    for y in 0..oh {
        let (y0, y1, fy) = coord(y, h, oh);
        for x in 0..ow {
            let (x0, x1, fx) = coord(x, w, ow);
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[test]
fn resize_up_is_half_pixel_bilinear() {
    let usps = load("usps", bundled(), Split::Test).unwrap().truncate(3);
    let big = resize_bilinear(&usps, 28, 28).unwrap();
    assert_eq!((big.len(), big.height, big.width, big.images.len()), (3, 28, 28, 3 * 784));
    for (src, out) in usps.images.chunks(256).zip(big.images.chunks(784)) {
        assert!(close(out, &bilinear_reference(src, 16, 16, 28, 28)));
    }
    assert!(big.images.iter().all(|p| (0.0..=1.0).contains(p)));
    let bigger = resize_bilinear(&big, 32, 32).unwrap();
    for (src, out) in big.images.chunks(784).zip(bigger.images.chunks(1024)) {
        assert!(close(out, &bilinear_reference(src, 28, 28, 32, 32)));
    }
}

#[test]
fn resize_to_same_size_is_identity() {
    let ds =
        Dataset { images: pixels(2, 3 * 5 * 7), labels: vec![4, 2], channels: 3, height: 5, width: 7, classes: 10 };
    let out = resize_bilinear(&ds, 5, 7).unwrap();
    assert_eq!(out.images, ds.images);
    assert_eq!(out.labels, ds.labels);
}

#[test]
fn resize_rejects_empty_sizes_and_bad_datasets() {
    let ds = grey(vec![0.0; 4], 2, 2);
    assert_err(&resize_bilinear(&ds, 0, 4).unwrap_err(), "E_SHAPE", &["0×4"]);
    let broken = Dataset { images: vec![0.0; 3], ..ds };
    assert_err(&resize_bilinear(&broken, 4, 4).unwrap_err(), "E_SHAPE", &["holds 3 values"]);
}

#[test]
fn to_rgb_replicates_grey() {
    let ds = grey(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], 2, 2);
    let rgb = to_rgb(&ds).unwrap();
    assert_eq!((rgb.len(), rgb.channels, rgb.height, rgb.width), (2, 3, 2, 2));
    let (a, b) = ([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]);
    assert_eq!(rgb.images, [a, a, a, b, b, b].concat());
    assert_eq!(to_rgb(&rgb).unwrap().images, rgb.images, "3 channels stay");
    let two = Dataset { channels: 2, height: 1, ..ds };
    assert_err(&to_rgb(&two).unwrap_err(), "E_SHAPE", &["2"]);
}

#[test]
fn normalize_half_maps_unit_to_symmetric() {
    let mut ds = grey(vec![0.0, 0.25, 0.5, 1.0], 2, 2);
    normalize_half(&mut ds);
    assert_eq!(ds.images, [-1.0, -0.5, 0.0, 1.0]);
}

#[test]
fn augment_is_seeded() {
    let usps = resize_bilinear(&load("usps", bundled(), Split::Train).unwrap().truncate(1), 28, 28).unwrap();
    let src = &usps.images;
    let run = |seed| {
        let mut out = vec![f32::NAN; 784];
        augment_image(src, 1, 28, 28, seed, &mut out).unwrap();
        out
    };
    assert_eq!(run(7), run(7));
    let outs: Vec<_> = (0..8).map(run).collect();
    assert!(outs.iter().any(|o| o != &outs[0]), "different seeds, different crops or angles");
    for out in &outs {
        // Nearest neighbour with zero fill: every value is a source pixel or 0.
        assert!(out.iter().all(|v| *v == 0.0 || src.contains(v)));
        // A ±4 shift and ±10° keep most of the digit.
        let ink = |img: &[f32]| img.iter().filter(|&&v| v > 0.5).count();
        assert!(ink(out) * 10 > ink(src) * 6, "{} of {}", ink(out), ink(src));
    }
}

#[test]
fn augment_handles_channels_and_checks_buffers() {
    let grey: Vec<f32> = pixels(1, 36);
    let rgb = [grey.clone(), grey.clone(), grey.clone()].concat();
    let (mut one, mut three) = (vec![0.0; 36], vec![0.0; 108]);
    augment_image(&grey, 1, 6, 6, 3, &mut one).unwrap();
    augment_image(&rgb, 3, 6, 6, 3, &mut three).unwrap();
    assert_eq!(three, [one.clone(), one.clone(), one].concat());
    assert_err(&augment_image(&grey, 1, 6, 6, 3, &mut [0.0; 35]).unwrap_err(), "E_SHAPE", &["35"]);
    assert_err(&augment_image(&grey[..30], 1, 6, 6, 3, &mut [0.0; 36]).unwrap_err(), "E_SHAPE", &["30"]);
}

#[test]
fn shot_pipelines() {
    // USPS → MNIST: 16×16 → 28×28, augmented, normalised.
    let usps = load("usps", bundled(), Split::Train).unwrap().truncate(4);
    let mut src = resize_bilinear(&usps, 28, 28).unwrap();
    let mut aug = vec![0.0; src.images.len()];
    for (i, (img, out)) in src.images.chunks(784).zip(aug.chunks_mut(784)).enumerate() {
        augment_image(img, 1, 28, 28, i as u64, out).unwrap();
    }
    src.images = aug;
    normalize_half(&mut src);
    assert!(src.images.iter().all(|v| (-1.0..=1.0).contains(v)));
    // MNIST → SVHN's shape: 28×28 grey → 32×32 RGB.
    let mnist = load("mnist", bundled(), Split::Test).unwrap().truncate(2);
    let rgb = to_rgb(&resize_bilinear(&mnist, 32, 32).unwrap()).unwrap();
    assert_eq!((rgb.len(), rgb.channels, rgb.height, rgb.width, rgb.images.len()), (2, 3, 32, 32, 2 * 3072));
}
