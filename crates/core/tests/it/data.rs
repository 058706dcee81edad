//! IDX decoding and dataset loading: every error on files written to a temp dir, the happy paths
//! raw and gzip, and the bundled real MNIST subset in `data/mnist/`.
use flate2::{write::GzEncoder, Compression};
use goldpan_core::data::{load, read_idx_images, read_idx_labels, Dataset, Split};
use goldpan_core::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

fn bundled() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

/// An IDX file: magic, big-endian sizes, payload.
fn idx(magic: u32, sizes: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    sizes.iter().for_each(|s| v.extend(s.to_be_bytes()));
    v.extend(payload);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `n` images of 2×3 pixels, image `i` filled with `i * 50`.
fn images_file(n: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..n).flat_map(|i| [(i * 50) as u8; 6]).collect();
    idx(IMAGES_MAGIC, &[n, 2, 3], &pixels)
}

fn labels_file(labels: &[u8]) -> Vec<u8> {
    idx(LABELS_MAGIC, &[labels.len() as u32], labels)
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A temp data dir holding `<dir>/mnist/train-*` made of `images` and `labels`, raw or gzip.
fn mnist_dir(images: &[u8], labels: &[u8], gzip: bool) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mnist = dir.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    let ext = if gzip { ".gz" } else { "" };
    let enc = |bytes: &[u8]| if gzip { gz(bytes) } else { bytes.to_vec() };
    std::fs::write(mnist.join(format!("train-images-idx3-ubyte{ext}")), enc(images)).unwrap();
    std::fs::write(mnist.join(format!("train-labels-idx1-ubyte{ext}")), enc(labels)).unwrap();
    dir
}

fn load_train(dir: &TempDir) -> Result<Dataset, Error> {
    load("mnist", dir.path(), Split::Train)
}

// === IDX decoding ===

#[test]
fn reads_raw_idx() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = read_idx_images(&write(&dir, "i", &images_file(3))).unwrap();
    assert_eq!((imgs.count, imgs.rows, imgs.cols), (3, 2, 3));
    assert_eq!(imgs.pixels, [[0; 6], [50; 6], [100; 6]].concat());
    assert_eq!(read_idx_labels(&write(&dir, "l", &labels_file(&[4, 0, 9]))).unwrap(), [4, 0, 9]);
}

#[test]
fn detects_gzip_by_magic_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // Gzip without `.gz`, and raw with `.gz`: both decode.
    let imgs = read_idx_images(&write(&dir, "images", &gz(&images_file(2)))).unwrap();
    assert_eq!(imgs.pixels, [[0; 6], [50; 6]].concat());
    assert_eq!(read_idx_labels(&write(&dir, "labels.gz", &labels_file(&[1, 2]))).unwrap(), [1, 2]);
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "i", &idx(0x1234_0803, &[1, 2, 3], &[0; 6]));
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, Error::DataMagic { found: 0x1234_0803, expected: IMAGES_MAGIC, .. }), "{err}");
    assert_eq!(err.code(), "E_DATA_MAGIC");
    // A PNG is not an IDX file either.
    let err = read_idx_labels(&write(&dir, "l", b"\x89PNG\r\n\x1a\n")).unwrap_err();
    assert!(matches!(err, Error::DataMagic { expected: LABELS_MAGIC, .. }), "{err}");
}

#[test]
fn wrong_dims() {
    let dir = tempfile::tempdir().unwrap();
    // A label file read as images, and an image file read as labels.
    let err = read_idx_images(&write(&dir, "l", &labels_file(&[1]))).unwrap_err();
    assert!(matches!(err, Error::DataDims { found: 1, expected: 3, .. }), "{err}");
    assert_eq!(err.code(), "E_DATA_DIMS");
    let err = read_idx_labels(&write(&dir, "i", &images_file(1))).unwrap_err();
    assert!(matches!(err, Error::DataDims { found: 3, expected: 1, .. }), "{err}");
}

#[test]
fn wrong_element_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "f32", &idx(0x0000_0d03, &[1, 1, 1], &[0; 4]));
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(&err, Error::DataFormat { reason, .. } if reason.contains("0x0d")), "{err}");
    assert_eq!(err.code(), "E_DATA_FORMAT");
}

#[test]
fn truncated_payload() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = images_file(3);
    bytes.truncate(bytes.len() - 1);
    for (name, bytes) in [("raw", bytes.clone()), ("gz", gz(&bytes))] {
        let err = read_idx_images(&write(&dir, name, &bytes)).unwrap_err();
        assert!(matches!(err, Error::DataTruncated { expected: 18, found: 17, .. }), "{name}: {err}");
        assert_eq!(err.code(), "E_DATA_TRUNCATED");
    }
}

#[test]
fn truncated_header() {
    let dir = tempfile::tempdir().unwrap();
    let header = &images_file(1)[..10];
    let err = read_idx_images(&write(&dir, "i", header)).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected: 16, found: 10, .. }), "{err}");
    let err = read_idx_labels(&write(&dir, "l", &gz(&[0, 0, 8, 1, 0]))).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected: 8, found: 5, .. }), "{err}");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "empty", b"");
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected: 16, found: 0, .. }), "{err}");
    let err = read_idx_labels(&path).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { expected: 8, found: 0, .. }), "{err}");
}

#[test]
fn absurd_header_is_truncated_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // u32::MAX images of 28×28 (~3 TB): must fail on the real length, not try to allocate.
    let bytes = idx(IMAGES_MAGIC, &[u32::MAX, 28, 28], &[0; 784]);
    for (name, bytes) in [("raw", bytes.clone()), ("gz", gz(&bytes))] {
        let err = read_idx_images(&write(&dir, name, &bytes)).unwrap_err();
        assert!(matches!(err, Error::DataTruncated { found: 784, .. }), "{name}: {err}");
    }
    let err = read_idx_labels(&write(&dir, "l", &idx(LABELS_MAGIC, &[u32::MAX], &[1]))).unwrap_err();
    assert!(matches!(err, Error::DataTruncated { found: 1, .. }), "{err}");
    // Sizes whose product overflows.
    let err = read_idx_images(&write(&dir, "o", &idx(IMAGES_MAGIC, &[u32::MAX; 3], &[]))).unwrap_err();
    assert!(matches!(err, Error::DataFormat { .. }), "{err}");
}

#[test]
fn zero_sized_images() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_idx_images(&write(&dir, "i", &idx(IMAGES_MAGIC, &[u32::MAX, 0, 28], &[]))).unwrap_err();
    assert!(matches!(err, Error::DataFormat { .. }), "{err}");
}

#[test]
fn corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let good = gz(&images_file(4));
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x55;
    let mut bad_crc = good.clone();
    let crc = good.len() - 8;
    bad_crc[crc] ^= 0xff;
    let cut = good[..good.len() - 3].to_vec();
    let header_only = good[..10].to_vec();
    for (name, bytes) in [("flipped", flipped), ("crc", bad_crc), ("cut", cut), ("header", header_only)] {
        let err = read_idx_images(&write(&dir, name, &bytes)).unwrap_err();
        assert!(matches!(err, Error::DataFormat { .. }), "{name}: {err}");
        assert_eq!(err.code(), "E_DATA_FORMAT");
    }
}

#[test]
fn trailing_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = labels_file(&[1, 2]);
    raw.extend(b"xx");
    let mut after_gz = gz(&labels_file(&[1, 2]));
    after_gz.extend(b"trailing junk");
    for (name, bytes) in [("raw", raw.clone()), ("inside-gz", gz(&raw)), ("after-gz", after_gz)] {
        let err = read_idx_labels(&write(&dir, name, &bytes)).unwrap_err();
        assert!(matches!(err, Error::DataFormat { .. }), "{name}: {err}");
    }
}

#[test]
fn unreadable_file_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_idx_images(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{err}");
    assert_eq!(err.code(), "E_IO");
    // A directory cannot be read as a file.
    let err = read_idx_labels(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

// === Loading a dataset ===

#[test]
fn loads_raw_and_gzip_alike() {
    for gzip in [false, true] {
        let dir = mnist_dir(&images_file(3), &labels_file(&[7, 0, 9]), gzip);
        let ds = load_train(&dir).unwrap();
        assert_eq!((ds.len(), ds.channels, ds.height, ds.width, ds.classes), (3, 1, 2, 3, 10));
        assert_eq!(ds.labels, [7, 0, 9]);
        assert_eq!(ds.images.len(), 3 * 6);
        assert_eq!(ds.images[..6], [0.0; 6]);
        assert_eq!(ds.images[6], 50.0 / 255.0);
        assert_eq!(ds.images[17], 100.0 / 255.0);
    }
}

#[test]
fn full_range_pixels_scale_to_unit_interval() {
    let pixels: Vec<u8> = (0..=255).collect();
    let dir = mnist_dir(&idx(IMAGES_MAGIC, &[1, 16, 16], &pixels), &labels_file(&[3]), false);
    let ds = load_train(&dir).unwrap();
    assert_eq!((ds.images[0], ds.images[255]), (0.0, 1.0));
    assert!(ds.images.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn raw_file_wins_over_gz() {
    let dir = mnist_dir(&images_file(2), &labels_file(&[1, 1]), true);
    let mnist = dir.path().join("mnist");
    std::fs::write(mnist.join("train-labels-idx1-ubyte"), labels_file(&[2, 2])).unwrap();
    assert_eq!(load_train(&dir).unwrap().labels, [2, 2]);
}

#[test]
fn count_mismatch() {
    let dir = mnist_dir(&images_file(3), &labels_file(&[1, 2]), true);
    let err = load_train(&dir).unwrap_err();
    assert!(matches!(err, Error::DataCountMismatch { images: 3, labels: 2, .. }), "{err}");
    assert_eq!(err.code(), "E_DATA_COUNT_MISMATCH");
}

#[test]
fn label_out_of_range() {
    let dir = mnist_dir(&images_file(3), &labels_file(&[9, 10, 0]), false);
    let err = load_train(&dir).unwrap_err();
    assert!(matches!(err, Error::DataLabel { index: 1, label: 10, classes: 10, .. }), "{err}");
    assert_eq!(err.code(), "E_DATA_LABEL");
}

#[test]
fn missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_train(&dir).unwrap_err();
    assert!(matches!(&err, Error::DataNotFound { tried, .. } if tried.contains("train-images-idx3-ubyte.gz")), "{err}");
    assert_eq!(err.code(), "E_DATA_NOT_FOUND");
    // Images present, labels missing.
    let dir = mnist_dir(&images_file(1), &labels_file(&[0]), false);
    std::fs::remove_file(dir.path().join("mnist/train-labels-idx1-ubyte")).unwrap();
    let err = load_train(&dir).unwrap_err();
    assert!(matches!(&err, Error::DataNotFound { tried, .. } if tried.contains("train-labels-idx1-ubyte")), "{err}");
}

#[test]
fn errors_surface_through_load() {
    let dir = mnist_dir(&images_file(2), &[0, 0, 8, 1], false);
    assert!(matches!(load_train(&dir).unwrap_err(), Error::DataTruncated { .. }));
    let dir = mnist_dir(b"", &labels_file(&[0]), true);
    assert!(matches!(load_train(&dir).unwrap_err(), Error::DataTruncated { found: 0, .. }));
}

#[test]
fn fashion_mnist_uses_the_same_loader() {
    let dir = mnist_dir(&images_file(1), &labels_file(&[5]), true);
    std::fs::rename(dir.path().join("mnist"), dir.path().join("fashion-mnist")).unwrap();
    let ds = load("fashion-mnist", dir.path(), Split::Train).unwrap();
    assert_eq!((ds.len(), ds.labels[0], ds.classes), (1, 5, 10));
}

// === The bundled subset ===

fn check_bundled(ds: &Dataset, len: usize) {
    assert_eq!(ds.len(), len);
    assert_eq!((ds.channels, ds.height, ds.width, ds.classes), (1, 28, 28, 10));
    assert_eq!(ds.images.len(), len * 784);
    assert!(ds.labels.iter().all(|&l| l < 10));
    assert!(ds.images.iter().all(|p| (0.0..=1.0).contains(p)));
    // Real digits: mostly background with some full ink.
    let ink = ds.images.iter().filter(|&&p| p > 0.5).count() as f64 / ds.images.len() as f64;
    assert!((0.05..0.3).contains(&ink), "ink fraction {ink}");
    assert!(ds.images.contains(&1.0));
}

#[test]
fn bundled_mnist_train() {
    let ds = load("mnist", bundled(), Split::Train).unwrap();
    check_bundled(&ds, 5000);
    // The first five labels of MNIST's training set.
    assert_eq!(ds.labels[..5], [5, 0, 4, 1, 9]);
    let mut counts = [0; 10];
    ds.labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(counts, [479, 563, 488, 493, 535, 434, 501, 550, 462, 495]);
}

#[test]
fn bundled_mnist_test() {
    let ds = load("mnist", bundled(), Split::Test).unwrap();
    check_bundled(&ds, 1000);
    // The first five labels of MNIST's test set.
    assert_eq!(ds.labels[..5], [7, 2, 1, 0, 4]);
    let mut counts = [0; 10];
    ds.labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(counts, [85, 126, 116, 107, 110, 87, 87, 99, 89, 94]);
}

/// The full datasets, from `$GOLDPAN_FULL_DATA` or the `shared/data/` beside the checkout.
#[test]
#[ignore = "needs the full MNIST and Fashion-MNIST (about 40 MiB), not in the repo"]
fn full_datasets() {
    let dir =
        std::env::var_os("GOLDPAN_FULL_DATA").map(PathBuf::from).unwrap_or_else(|| bundled().join("../../shared/data"));
    for name in ["mnist", "fashion-mnist"] {
        for (split, len) in [(Split::Train, 60_000), (Split::Test, 10_000)] {
            let ds = load(name, &dir, split).unwrap();
            assert_eq!((ds.len(), ds.images.len()), (len, len * 784), "{name} {split:?}");
            assert!(ds.labels.iter().all(|&l| l < 10));
            assert!(ds.images.iter().all(|p| (0.0..=1.0).contains(p)));
        }
    }
}
