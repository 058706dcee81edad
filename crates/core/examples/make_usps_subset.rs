//! Cuts the bundled USPS subset `data/usps/usps.h5` from the full Kaggle `usps.h5`: the first
//! 2,000 training and first 500 test samples, in order and unchanged, in the same structure
//! (groups `train`/`test`, `data` float32 N×256 and `target` int32 N, chunked and gzip).
//!
//! `cargo run -p goldpan-core --example make_usps_subset [SRC_DATA_DIR] [DST_FILE]`
//!
//! `SRC_DATA_DIR` holds `usps/usps.h5` (default: `shared/data` beside the checkout); `DST_FILE`
//! defaults to `data/usps/usps.h5`. It reads back what it wrote and prints the label counts.
use goldpan_core::data::{load, Dataset, Split};
use rust_hdf5::H5File;
use std::path::PathBuf;

const TRAIN: usize = 2000;
const TEST: usize = 500;
/// Rows per chunk of `data` (500 × 256 float32 = 500 KiB, under HDF5's 1 MiB chunk cache).
const CHUNK_ROWS: usize = 500;
const GZIP_LEVEL: u32 = 9;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut args = std::env::args().skip(1);
    let src = args.next().map(PathBuf::from).unwrap_or_else(|| root.join("../shared/data"));
    let dst = args.next().map(PathBuf::from).unwrap_or_else(|| root.join("data/usps/usps.h5"));

    let full = [load("usps", &src, Split::Train)?, load("usps", &src, Split::Test)?];
    for (name, ds) in ["train", "test"].iter().zip(&full) {
        println!("full {name}: {} samples, label counts {:?}", ds.len(), counts(ds));
    }
    let [train, test] = full;
    let subset = [("train", train.truncate(TRAIN)), ("test", test.truncate(TEST))];

    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = H5File::create(&dst)?;
    for (name, ds) in &subset {
        let group = file.create_group(name)?;
        let n = ds.len();
        let data = group
            .new_dataset::<f32>()
            .shape([n, 256])
            .chunk(&[CHUNK_ROWS.min(n), 256])
            .deflate(GZIP_LEVEL)
            .create("data")?;
        data.write_raw(&ds.images)?;
        let labels: Vec<i32> = ds.labels.iter().map(|&l| l as i32).collect();
        let target = group.new_dataset::<i32>().shape([n]).chunk(&[n]).deflate(GZIP_LEVEL).create("target")?;
        target.write_raw(&labels)?;
    }
    file.close()?;

    // Read back through the loader: the same samples, bit for bit.
    let dst_dir = dst.parent().and_then(|p| p.parent()).ok_or("DST_FILE must be <dir>/usps/usps.h5")?;
    for ((name, want), split) in subset.iter().zip([Split::Train, Split::Test]) {
        let got = load("usps", dst_dir, split)?;
        assert_eq!(got.labels, want.labels, "{name} labels");
        assert!(got.images.iter().zip(&want.images).all(|(a, b)| a.to_bits() == b.to_bits()), "{name} images");
        println!("subset {name}: {} samples, label counts {:?}", got.len(), counts(&got));
    }
    println!("wrote {} ({} bytes)", dst.display(), std::fs::metadata(&dst)?.len());
    Ok(())
}

fn counts(ds: &Dataset) -> [usize; 10] {
    let mut c = [0; 10];
    ds.labels.iter().for_each(|&l| c[l as usize] += 1);
    c
}
