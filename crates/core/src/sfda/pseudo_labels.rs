//! SHOT's self-supervised pseudo-labels (`obtain_label` in `uda_digit.py`): class centroids
//! of the target features weighted by the model's softmax, nearest centroid by cosine
//! distance, then one refinement with the hard labels.
//!
//! ```
//! use goldpan_core::sfda::cosine_pseudo_labels;
//! // Two tight clusters, a model that is unsure about the first one's second point.
//! let features = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9];
//! let probs = [0.9, 0.1, 0.4, 0.6, 0.2, 0.8, 0.1, 0.9];
//! assert_eq!(cosine_pseudo_labels(&features, 2, &probs, 2), [0, 0, 1, 1]);
//! ```

/// Pseudo-labels of `n` samples from their features (`n × dim`, row-major) and softmax
/// outputs (`n × classes`): features get a constant 1 appended and are L2-normalised;
/// centroids `cₖ = Σᵢ pᵢₖ fᵢ / (10⁻⁸ + Σᵢ pᵢₖ)`; labels `argminₖ 1 − cos(fᵢ, cₖ)`; then centroids
/// again from those hard labels, and labels again. A class whose centroid is zero (no sample
/// has it) is never chosen, where SHOT's `cdist` would produce NaN.
pub fn cosine_pseudo_labels(features: &[f32], dim: usize, probs: &[f64], classes: usize) -> Vec<u32> {
    let n = probs.len() / classes.max(1);
    assert_eq!(features.len(), n * dim, "features and probabilities describe different sample counts");
    let d = dim + 1;
    let mut f = vec![0f64; n * d];
    for (row, src) in f.chunks_exact_mut(d).zip(features.chunks_exact(dim)) {
        for (a, &b) in row.iter_mut().zip(src) {
            *a = b as f64;
        }
        row[dim] = 1.0;
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let labels = nearest(&f, d, &centroids(&f, d, probs, classes), classes);
    let hard: Vec<f64> = labels.iter().flat_map(|&l| (0..classes).map(move |k| f64::from(k as u32 == l))).collect();
    nearest(&f, d, &centroids(&f, d, &hard, classes), classes)
}

/// `cₖ = Σᵢ wᵢₖ fᵢ / (10⁻⁸ + Σᵢ wᵢₖ)`, `classes × d`.
fn centroids(f: &[f64], d: usize, weights: &[f64], classes: usize) -> Vec<f64> {
    let mut c = vec![0f64; classes * d];
    let mut mass = vec![0f64; classes];
    for (row, w) in f.chunks_exact(d).zip(weights.chunks_exact(classes)) {
        for k in 0..classes {
            mass[k] += w[k];
            for (a, &v) in c[k * d..(k + 1) * d].iter_mut().zip(row) {
                *a += w[k] * v;
            }
        }
    }
    for k in 0..classes {
        c[k * d..(k + 1) * d].iter_mut().for_each(|v| *v /= 1e-8 + mass[k]);
    }
    c
}

/// For each (unit-norm) row of `f`, the class whose centroid has the largest cosine.
fn nearest(f: &[f64], d: usize, c: &[f64], classes: usize) -> Vec<u32> {
    let norms: Vec<f64> = c.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
    f.chunks_exact(d)
        .map(|row| {
            let mut best = (f64::NEG_INFINITY, 0u32);
            for k in 0..classes {
                if norms[k] == 0.0 {
                    continue;
                }
                let cos = row.iter().zip(&c[k * d..(k + 1) * d]).map(|(a, b)| a * b).sum::<f64>() / norms[k];
                if cos > best.0 {
                    best = (cos, k as u32);
                }
            }
            best.1
        })
        .collect()
}
