//! SHOT's digit transforms (torchvision on PIL images there), on NCHW images in `[0, 1]`:
//!
//! - [`resize_bilinear`]: PIL's bilinear resize, e.g. USPS 16×16 → 28×28 or MNIST 28×28 → 32×32.
//! - [`to_rgb`]: one grey channel → three equal ones (MNIST next to SVHN).
//! - [`normalize_half`]: `Normalize(0.5, 0.5)`, `x → (x − 0.5) / 0.5`, so `[0, 1]` → `[−1, 1]`.
//! - [`augment_image`]: the source-training augmentation of USPS, `RandomCrop(size, padding=4)`
//!   then `RandomRotation(10)`, seeded.
//!
//! They work in `f32` where PIL rounds to `u8` after each step, so results differ from
//! torchvision's by up to about 1/255 per step. Checked against Pillow 13 on a 28×28 `u8` pattern:
//! the crop + rotation (7.3°, −9.9°, 3°, 45°) matched pixel for pixel, the resizes to 32×32,
//! 16×16 and 40×20 within 0.92/255.
//!
//! ```
//! use goldpan_core::data::{normalize_half, resize_bilinear, to_rgb, Dataset};
//! let grey = Dataset { images: vec![0.0, 1.0, 1.0, 0.0], labels: vec![3], channels: 1, height: 2, width: 2, classes: 10 };
//! let mut rgb = to_rgb(&resize_bilinear(&grey, 4, 4).unwrap()).unwrap();
//! normalize_half(&mut rgb);
//! assert_eq!((rgb.channels, rgb.height, rgb.width, rgb.images.len()), (3, 4, 4, 48));
//! // Corners keep their pixel: (0 − 0.5) / 0.5 and (1 − 0.5) / 0.5.
//! assert_eq!((rgb.images[0], rgb.images[3]), (-1.0, 1.0));
//! ```
use super::Dataset;
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Zero padding on each side before [`augment_image`]'s random crop (`RandomCrop(…, padding=4)`).
pub const AUGMENT_PADDING: usize = 4;
/// [`augment_image`] rotates by a uniform angle in `[−10°, 10°]` (`RandomRotation(10)`).
pub const AUGMENT_DEGREES: f64 = 10.0;

/// Resizes every image to `height × width` as PIL's `Image.resize(…, BILINEAR)` does: a
/// separable triangle filter over pixel centres (`src = (dst + 0.5) · in/out − 0.5`), its weights
/// renormalised where it overhangs the edge, widened by `in/out` when shrinking (antialiasing).
///
/// When enlarging, as for USPS 16 → 28 and MNIST 28 → 32, this is plain bilinear interpolation
/// with half-pixel centres and source coordinates clamped to the image. Resizing to the same size
/// returns the images unchanged. An empty target size or an inconsistent dataset is
/// [`Error::Shape`].
pub fn resize_bilinear(ds: &Dataset, height: usize, width: usize) -> Result<Dataset> {
    check(ds)?;
    if height == 0 || width == 0 || ds.height == 0 || ds.width == 0 {
        let (h, w) = (ds.height, ds.width);
        return Err(Error::Shape(format!("cannot resize {h}×{w} images to {height}×{width}")));
    }
    let rows = pil_weights(ds.height, height);
    let cols = pil_weights(ds.width, width);
    let planes = ds.len() * ds.channels;
    let mut images = Vec::with_capacity(planes * height * width);
    let mut across = vec![0.0f32; ds.height * width];
    for plane in ds.images.chunks_exact(ds.height * ds.width) {
        // Across each row first, then down each column, as PIL does.
        for (src, dst) in plane.chunks_exact(ds.width).zip(across.chunks_exact_mut(width)) {
            for (d, (first, weights)) in dst.iter_mut().zip(&cols) {
                *d = weights.iter().zip(&src[*first..]).map(|(w, p)| w * p).sum();
            }
        }
        for (first, weights) in &rows {
            for x in 0..width {
                let column = across[first * width + x..].iter().step_by(width);
                images.push(weights.iter().zip(column).map(|(w, p)| w * p).sum());
            }
        }
    }
    Ok(Dataset { images, height, width, ..ds.clone_meta() })
}

/// PIL's bilinear weights (`Resample.c`, `precompute_coeffs`) for `input` samples resized to
/// `output`: per output sample, the first input index and the weights from there on.
fn pil_weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support is 1, widened when shrinking
    let triangle = |x: f64| (1.0 - x.abs()).max(0.0);
    (0..output)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            // C's `(int)` truncates towards zero; negative starts clamp to 0 either way.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).clamp(0, input as i64) as usize;
            let weights: Vec<f64> = (first..end).map(|x| triangle((x as f64 - center + 0.5) / filter_scale)).collect();
            let total: f64 = weights.iter().sum();
            let norm = if total == 0.0 { 1.0 } else { total };
            (first, weights.iter().map(|w| (w / norm) as f32).collect())
        })
        .collect()
}

/// Replicates a grey channel three times (PIL's `convert("RGB")` of an `L` image). A dataset
/// that already has 3 channels is returned as is; other channel counts are [`Error::Shape`].
pub fn to_rgb(ds: &Dataset) -> Result<Dataset> {
    check(ds)?;
    match ds.channels {
        3 => Ok(ds.clone()),
        1 => {
            let plane = ds.height * ds.width;
            let mut images = Vec::with_capacity(ds.images.len() * 3);
            for image in ds.images.chunks_exact(plane.max(1)) {
                (0..3).for_each(|_| images.extend_from_slice(image));
            }
            Ok(Dataset { images, channels: 3, ..ds.clone_meta() })
        }
        c => Err(Error::Shape(format!("to_rgb needs 1 or 3 channels, the dataset has {c}"))),
    }
}

/// `Normalize(mean=0.5, std=0.5)` on every channel: `x → (x − 0.5) / 0.5`. The images are then in
/// `[−1, 1]`, no longer in `[0, 1]` as [`Dataset`] usually holds; apply it last.
pub fn normalize_half(ds: &mut Dataset) {
    ds.images.iter_mut().for_each(|x| *x = (*x - 0.5) / 0.5);
}

/// Augments one `channels × height × width` image in `[0, 1]` into `out` (same size), as SHOT
/// does for USPS as the source: `RandomCrop((height, width), padding=4)` then
/// `RandomRotation(10)`, both before `ToTensor`/`Normalize`, so the padding and the corners
/// rotated in are 0 (black).
///
/// - Crop: the image is padded with [`AUGMENT_PADDING`] zeros on each side and a window of the
///   original size is cut at a uniform offset in `0..=8` down and across; 4 is no shift.
/// - Rotation: a uniform angle in `[−10°, 10°]`, counter-clockwise for positive angles, about the
///   image centre, nearest neighbour, as PIL's `Image.rotate`: output pixel centre `(x + ½, y + ½)`
///   is mapped back into the input and floored.
///
/// The same `seed` gives the same offsets and angle (ChaCha8). Buffers of the wrong length are
/// [`Error::Shape`].
pub fn augment_image(
    src: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    seed: u64,
    out: &mut [f32],
) -> Result<()> {
    let len = channels.checked_mul(height).and_then(|n| n.checked_mul(width));
    if len != Some(src.len()) || len != Some(out.len()) {
        let (s, o) = (src.len(), out.len());
        return Err(Error::Shape(format!("augment_image: {channels}×{height}×{width} image, buffers of {s} and {o}")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let top = rng.random_range(0..=2 * AUGMENT_PADDING);
    let left = rng.random_range(0..=2 * AUGMENT_PADDING);
    let degrees = rng.random_range(-AUGMENT_DEGREES..=AUGMENT_DEGREES);
    crop_rotate(src, height, width, (top, left), degrees, out);
    Ok(())
}

/// The crop at `(top, left)` of the zero-padded image, then the rotation by `degrees`, on each
/// `height × width` plane of `src` (the caller checks that `out` is as long).
fn crop_rotate(src: &[f32], height: usize, width: usize, (top, left): (usize, usize), degrees: f64, out: &mut [f32]) {
    // PIL's `rotate` rounds the matrix to 15 decimals, so multiples of 90° are exact.
    let round = |v: f64| (v * 1e15).round() / 1e15;
    let theta = -degrees.to_radians();
    let (cos, sin) = (round(theta.cos()), round(theta.sin()));
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    let plane = height * width;
    for (src, out) in src.chunks_exact(plane.max(1)).zip(out.chunks_exact_mut(plane.max(1))) {
        for y in 0..height {
            for x in 0..width {
                let (u, v) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let (xr, yr) = ((cos * u + sin * v + cx).floor(), (-sin * u + cos * v + cy).floor());
                out[y * width + x] = if (0.0..width as f64).contains(&xr) && (0.0..height as f64).contains(&yr) {
                    // Pixel (yr, xr) of the crop is pixel (yr + top − 4, xr + left − 4) of the image.
                    let (ys, xs) = (
                        (yr as usize + top).checked_sub(AUGMENT_PADDING),
                        (xr as usize + left).checked_sub(AUGMENT_PADDING),
                    );
                    match (ys, xs) {
                        (Some(ys), Some(xs)) if ys < height && xs < width => src[ys * width + xs],
                        _ => 0.0,
                    }
                } else {
                    0.0
                };
            }
        }
    }
}

/// `images.len()` must be `len × channels × height × width`.
fn check(ds: &Dataset) -> Result<()> {
    let want = [ds.channels, ds.height, ds.width].iter().try_fold(ds.len(), |n, &d| n.checked_mul(d));
    if want != Some(ds.images.len()) {
        let (n, c, h, w) = (ds.len(), ds.channels, ds.height, ds.width);
        return Err(Error::Shape(format!("dataset of {n} × {c}×{h}×{w} images holds {} values", ds.images.len())));
    }
    Ok(())
}

impl Dataset {
    /// Labels, shape and classes without the images.
    fn clone_meta(&self) -> Dataset {
        Dataset { images: Vec::new(), labels: self.labels.clone(), ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×4 image with a distinct value per pixel: 1, 2, …, 16 (row-major).
    fn counting(h: usize, w: usize) -> Vec<f32> {
        (1..=h * w).map(|v| v as f32).collect()
    }

    fn apply(src: &[f32], h: usize, w: usize, offset: (usize, usize), degrees: f64) -> Vec<f32> {
        let mut out = vec![f32::NAN; src.len()];
        crop_rotate(src, h, w, offset, degrees, &mut out);
        out
    }

    #[test]
    fn no_shift_no_rotation_is_identity() {
        let img = counting(5, 7);
        assert_eq!(apply(&img, 5, 7, (4, 4), 0.0), img);
    }

    #[test]
    fn quarter_turn_is_counter_clockwise() {
        // 1  2  3  4          4  8 12 16
        // 5  6  7  8    →     3  7 11 15
        // 9 10 11 12          2  6 10 14
        // 13 14 15 16         1  5  9 13
        let img = counting(4, 4);
        let want = [4., 8., 12., 16., 3., 7., 11., 15., 2., 6., 10., 14., 1., 5., 9., 13.];
        assert_eq!(apply(&img, 4, 4, (4, 4), 90.0), want);
        // Odd sizes turn about the centre pixel.
        let img = counting(3, 3);
        assert_eq!(apply(&img, 3, 3, (4, 4), 90.0), [3., 6., 9., 2., 5., 8., 1., 4., 7.]);
        assert_eq!(apply(&img, 3, 3, (4, 4), -90.0), [7., 4., 1., 8., 5., 2., 9., 6., 3.]);
        assert_eq!(apply(&img, 3, 3, (4, 4), 180.0), [9., 8., 7., 6., 5., 4., 3., 2., 1.]);
    }

    #[test]
    fn crop_offsets_shift_in_zeros() {
        let img = counting(3, 3);
        // top 5, left 4: the window starts one row lower, so the image moves up by one.
        assert_eq!(apply(&img, 3, 3, (5, 4), 0.0), [4., 5., 6., 7., 8., 9., 0., 0., 0.]);
        // top 4, left 3: the image moves right by one.
        assert_eq!(apply(&img, 3, 3, (4, 3), 0.0), [0., 1., 2., 0., 4., 5., 0., 7., 8.]);
        // Offset 0 or 8 on a 3×3 image leaves only padding.
        assert_eq!(apply(&img, 3, 3, (0, 4), 0.0), [0.0; 9]);
        assert_eq!(apply(&img, 3, 3, (4, 8), 0.0), [0.0; 9]);
    }

    #[test]
    fn small_rotation_fills_corners_with_zero() {
        let img = vec![1.0; 28 * 28];
        let out = apply(&img, 28, 28, (4, 4), 10.0);
        assert_eq!((out[0], out[27], out[28 * 27], out[28 * 28 - 1]), (0.0, 0.0, 0.0, 0.0));
        assert_eq!(out[14 * 28 + 14], 1.0);
        let ones = out.iter().filter(|&&v| v == 1.0).count();
        assert!((700..784).contains(&ones), "{ones}");
    }

    #[test]
    fn channels_are_transformed_alike() {
        let grey = counting(4, 4);
        let rgb: Vec<f32> = [grey.clone(), grey.clone(), grey.clone()].concat();
        let one = apply(&grey, 4, 4, (3, 5), 37.0);
        assert_eq!(apply(&rgb, 4, 4, (3, 5), 37.0), [one.clone(), one.clone(), one].concat());
    }

    #[test]
    fn pil_weights_when_enlarging_are_half_pixel_bilinear() {
        let w = pil_weights(2, 4);
        assert_eq!(w, [(0, vec![1.0]), (0, vec![0.75, 0.25]), (0, vec![0.25, 0.75]), (1, vec![1.0])]);
        // Same size: a single weight of 1 on the same pixel (and a zero on the next).
        for (o, (first, weights)) in pil_weights(5, 5).into_iter().enumerate() {
            assert_eq!((first, weights[0]), (o, 1.0));
            assert!(weights[1..].iter().all(|&w| w == 0.0));
        }
    }

    #[test]
    fn pil_weights_when_shrinking_average() {
        // 4 → 2: the triangle is widened ×2 (support 2) and its weights 0.75, 0.75, 0.25
        // renormalised where it overhangs the edge.
        let (big, small) = ((3.0f64 / 7.0) as f32, (1.0f64 / 7.0) as f32);
        assert_eq!(pil_weights(4, 2), [(0, vec![big, big, small]), (1, vec![small, big, big])]);
    }
}
