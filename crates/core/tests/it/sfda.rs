//! Source training and adaptation end to end on the bundled MNIST and USPS subsets: each
//! method runs, is deterministic under a seed, and touches what it should.
use goldpan_core::sfda::{self, AdaptConfig, Method, SourceConfig};
use goldpan_core::train::Progress;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn quiet(_: &Progress) {}

fn source(dir: &Path, seed: u64) -> sfda::SourceResult {
    let cfg = SourceConfig {
        source: "mnist".into(),
        data_dir: bundled(),
        epochs: 2,
        train_limit: Some(1500),
        seed,
        out_dir: Some(dir.to_path_buf()),
        ..SourceConfig::default()
    };
    sfda::train_source(cfg, &mut quiet, &AtomicBool::new(false)).unwrap()
}

fn adapt(from: &Path, method: Method, out: Option<&Path>) -> sfda::AdaptResult {
    let cfg = AdaptConfig {
        method,
        from: from.to_path_buf(),
        target: "usps".into(),
        data_dir: bundled(),
        epochs: Some(1),
        train_limit: Some(400),
        test_limit: Some(300),
        out_dir: out.map(Path::to_path_buf),
        ..AdaptConfig::default()
    };
    sfda::adapt(cfg, &mut quiet, &AtomicBool::new(false)).unwrap()
}

#[test]
fn source_training_then_every_method_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let a = source(dir.path(), 0);
    assert!(a.best_val_accuracy > 0.5, "source model learns: {a:?}");
    assert_eq!(a.train_size + a.val_size, 1500);
    let ckpt = a.checkpoint.clone().unwrap();
    let other = tempfile::tempdir().unwrap();
    assert_eq!(source(other.path(), 0).weights_hash, a.weights_hash, "same seed, same source model");

    let none = adapt(&ckpt, Method::None, None);
    assert_eq!((none.before.loss, none.before.accuracy), (none.after.loss, none.after.accuracy));
    for method in [Method::Adabn, Method::KlOnly, Method::Pul, Method::ShotIm, Method::Shot] {
        let out = tempfile::tempdir().unwrap();
        let r1 = adapt(&ckpt, method, Some(out.path()));
        let r2 = adapt(&ckpt, method, None);
        eprintln!(
            "{method:?}: target acc {:.3} → {:.3}, MI {:.3} → {:.3}",
            r1.before.accuracy, r1.after.accuracy, r1.mutual_information_before, r1.mutual_information_after
        );
        assert_eq!(r1.weights_hash, r2.weights_hash, "{method:?} is deterministic");
        assert_ne!(r1.weights_hash, none.weights_hash, "{method:?} changes the model");
        assert_eq!(r1.before.accuracy, none.before.accuracy);
        assert!(r1.checkpoint.as_ref().unwrap().is_file());
    }
}

/// SHOT's `obtain_label` written out with plain loops (append 1, normalise, soft centroids,
/// cosine distance, one hard refinement), against the library on random data.
#[test]
fn pseudo_labels_match_a_direct_implementation() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (n, dim, k) = (60, 7, 4);
    let feats: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut probs: Vec<f64> = (0..n * k).map(|_| rng.random_range(0.01..1.0)).collect();
    for row in probs.chunks_mut(k) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|p| *p /= s);
    }
    let f: Vec<Vec<f64>> = feats
        .chunks(dim)
        .map(|r| {
            let mut v: Vec<f64> = r.iter().map(|&x| x as f64).chain([1.0]).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect();
    let assign = |w: &dyn Fn(usize, usize) -> f64| -> Vec<u32> {
        let c: Vec<Vec<f64>> = (0..k)
            .map(|j| {
                let mass: f64 = (0..n).map(|i| w(i, j)).sum();
                (0..=dim).map(|d| (0..n).map(|i| w(i, j) * f[i][d]).sum::<f64>() / (1e-8 + mass)).collect()
            })
            .collect();
        (0..n)
            .map(|i| {
                let dist = |j: usize| {
                    let dot: f64 = (0..=dim).map(|d| f[i][d] * c[j][d]).sum();
                    1.0 - dot / c[j].iter().map(|x| x * x).sum::<f64>().sqrt()
                };
                (0..k).min_by(|&a, &b| dist(a).partial_cmp(&dist(b)).unwrap()).unwrap() as u32
            })
            .collect()
    };
    let first = assign(&|i, j| probs[i * k + j]);
    let expected = assign(&|i, j| f64::from(first[i] == j as u32));
    assert_eq!(sfda::cosine_pseudo_labels(&feats, dim, &probs, k), expected);
}

#[test]
fn configs_are_validated_with_specific_fields() {
    let bad = SourceConfig { source: "cifar".into(), ..SourceConfig::default() };
    let err = sfda::train_source(bad, &mut quiet, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(err.code(), "E_CONFIG");
    assert!(err.to_string().contains("source"), "{err}");
    let bad = SourceConfig { model: Some("lenet5".into()), ..SourceConfig::default() };
    assert!(sfda::train_source(bad, &mut quiet, &AtomicBool::new(false))
        .unwrap_err()
        .to_string()
        .contains("bottleneck"));
    let mut cfg = AdaptConfig { from: "nope.safetensors".into(), data_dir: bundled(), ..AdaptConfig::default() };
    cfg.pul.classes = 1;
    let err = sfda::adapt(cfg.clone(), &mut quiet, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains("pul.classes"), "{err}");
    cfg.pul.classes = 3;
    assert_eq!(sfda::adapt(cfg, &mut quiet, &AtomicBool::new(false)).unwrap_err().code(), "E_CHECKPOINT");
    // Every field has a default; unknown methods are rejected by serde.
    let parsed: AdaptConfig = serde_json::from_str(r#"{"method":"shot-im","pul":{"attach":"backbone"}}"#).unwrap();
    assert_eq!((parsed.method, parsed.epochs(), parsed.pul.classes), (Method::ShotIm, 30, 3));
    assert!(serde_json::from_str::<AdaptConfig>(r#"{"method":"foo"}"#).is_err());
}
