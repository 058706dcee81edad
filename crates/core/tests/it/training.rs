//! Training end to end on the bundled MNIST subset: determinism, resume, checkpoints, errors.
use goldpan_core::checkpoint::Checkpoint;
use goldpan_core::train::{self, Progress, ProgressKind, ResumeOverrides, TrainConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn small(seed: u64, out_dir: Option<&Path>) -> TrainConfig {
    TrainConfig {
        data_dir: bundled(),
        epochs: 2,
        batch_size: 32,
        seed,
        train_limit: Some(320),
        test_limit: Some(100),
        progress_every: 5,
        out_dir: out_dir.map(Path::to_path_buf),
        ..TrainConfig::default()
    }
}

fn quiet(_: &Progress) {}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let never = AtomicBool::new(false);
    let a = train::train(small(1, None), &mut quiet, &never).unwrap();
    let b = train::train(small(1, None), &mut quiet, &never).unwrap();
    let c = train::train(small(2, None), &mut quiet, &never).unwrap();
    assert_eq!(a.weights_hash, b.weights_hash);
    assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits());
    assert_eq!(a.test_accuracy.to_bits(), b.test_accuracy.to_bits());
    assert_ne!(a.weights_hash, c.weights_hash);
    assert_eq!(a.steps, 20);
}

#[test]
fn training_learns() {
    let never = AtomicBool::new(false);
    let cfg = TrainConfig { train_limit: Some(2000), test_limit: Some(500), lr: 0.05, ..small(0, None) };
    let r = train::train(cfg, &mut quiet, &never).unwrap();
    // Chance is 10 %; two epochs on 2000 digits give well over 80 %.
    assert!(r.test_accuracy > 0.8, "test accuracy {}", r.test_accuracy);
}

#[test]
fn resume_mid_epoch_matches_an_uninterrupted_run() {
    let never = AtomicBool::new(false);
    let full = train::train(small(3, None), &mut quiet, &never).unwrap();

    // Cancel at the step-5 event (mid-epoch 1), then resume twice: from there, and from epoch 1's end.
    let dir = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    let mut stop_at_7 = |p: &Progress| {
        if p.kind == ProgressKind::Step && p.step >= 5 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let err = train::train(small(3, Some(dir.path())), &mut stop_at_7, &cancel).unwrap_err();
    assert_eq!(err.code(), "E_CANCELLED");
    let last = dir.path().join("last.safetensors");
    assert!(err.to_string().contains(&last.display().to_string()), "{err}");
    let saved = Checkpoint::load(&last).unwrap();
    assert_eq!((saved.epoch, saved.batch_in_epoch, saved.global_step), (0, 5, 5));

    let resumed = train::resume(&last, ResumeOverrides::default(), &mut quiet, &never).unwrap();
    assert_eq!(resumed.weights_hash, full.weights_hash);
    assert_eq!(resumed.steps, full.steps);

    let from_epoch =
        train::resume(&dir.path().join("epoch-1.safetensors"), ResumeOverrides::default(), &mut quiet, &never).unwrap();
    assert_eq!(from_epoch.weights_hash, full.weights_hash);
}

#[test]
fn resume_can_extend_a_finished_run() {
    let never = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let three = train::train(TrainConfig { epochs: 3, ..small(4, None) }, &mut quiet, &never).unwrap();
    train::train(small(4, Some(dir.path())), &mut quiet, &never).unwrap();
    let more = ResumeOverrides { epochs: Some(3), ..Default::default() };
    let extended = train::resume(&dir.path().join("last.safetensors"), more, &mut quiet, &never).unwrap();
    assert_eq!(extended.weights_hash, three.weights_hash);
}

#[test]
fn events_and_checkpoints_are_written() {
    let never = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    let r = train::train(small(5, Some(dir.path())), &mut |p: &Progress| events.push(p.clone()), &never).unwrap();
    let epochs: Vec<_> = events.iter().filter(|e| e.kind == ProgressKind::Epoch).collect();
    assert_eq!(epochs.len(), 2);
    assert!(epochs.iter().all(|e| e.test_accuracy.is_some() && e.checkpoint.is_some()));
    assert_eq!(events.iter().filter(|e| e.kind == ProgressKind::Step).count(), 4);
    assert!(events.iter().all(|e| e.images_per_sec > 0.0 && e.loss.is_finite()));
    for name in ["epoch-1.safetensors", "epoch-2.safetensors", "last.safetensors"] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    let last = Checkpoint::load(&dir.path().join("last.safetensors")).unwrap();
    assert_eq!((last.epoch, last.global_step), (2, r.steps));
    assert_eq!(last.config, small(5, Some(dir.path())));
}

#[test]
fn nan_loss_stops_and_keeps_the_last_good_checkpoint() {
    let never = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    // A huge learning rate diverges within a few steps; checkpoint every step until then.
    let cfg = TrainConfig { lr: 1e6, checkpoint_every: Some(1), epochs: 1, ..small(6, Some(dir.path())) };
    let err = train::train(cfg, &mut quiet, &never).unwrap_err();
    assert_eq!(err.code(), "E_NAN_LOSS", "{err}");
    let last = dir.path().join("last.safetensors");
    let kept = Checkpoint::load(&last).unwrap();
    assert!(kept.params.iter().all(|(_, v, _)| v.iter().all(|x| x.is_finite())));
    assert!(err.to_string().contains("last good checkpoint"), "{err}");
}

#[test]
fn bad_config_and_missing_data_are_specific_errors() {
    let never = AtomicBool::new(false);
    let bad = |c: TrainConfig| train::train(c, &mut quiet, &never).unwrap_err();
    assert_eq!(bad(TrainConfig { model: "resnet".into(), ..small(0, None) }).code(), "E_CONFIG");
    assert_eq!(bad(TrainConfig { lr: f64::NAN, ..small(0, None) }).code(), "E_CONFIG");
    assert_eq!(bad(TrainConfig { batch_size: 0, ..small(0, None) }).code(), "E_CONFIG");
    assert_eq!(bad(TrainConfig { device: "cuda".into(), ..small(0, None) }).code(), "E_DEVICE");
    assert_eq!(bad(TrainConfig { data_dir: "/nonexistent".into(), ..small(0, None) }).code(), "E_DATA_NOT_FOUND");
}

#[test]
fn evaluate_checkpoint_reproduces_the_runs_test_accuracy() {
    let never = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let r = train::train(small(7, Some(dir.path())), &mut quiet, &never).unwrap();
    let (_, e) = train::evaluate_checkpoint(
        &dir.path().join("last.safetensors"),
        &bundled(),
        goldpan_core::data::Split::Test,
        Some(100),
        1000,
        "cpu",
        None,
    )
    .unwrap();
    assert_eq!(e.count, 100);
    assert_eq!(e.accuracy, r.test_accuracy);
}

#[test]
fn shot_networks_have_the_expected_size() {
    let count = |name: &str| {
        goldpan_core::models::spec(name).unwrap().build(0, &candle_core::Device::Cpu).unwrap().params().count()
    };
    // PyTorch: LeNetBase 25,570 + bottleneck 205,056 + BN1d 512 + wn classifier 2,580.
    assert_eq!(count("lenet-base"), 233_718);
    // DTNBase 1,030,144 + bottleneck 1,048,832 + 512 + 2,580.
    assert_eq!(count("dtn"), 2_082_068);
}

#[test]
fn lenet_base_with_dropout_and_batch_norm_resumes_bit_for_bit() {
    let never = AtomicBool::new(false);
    let cfg = |out: Option<&Path>| TrainConfig {
        model: "lenet-base".into(),
        train_limit: Some(192),
        test_limit: Some(64),
        ..small(9, out)
    };
    let full = train::train(cfg(None), &mut quiet, &never).unwrap();
    assert_eq!(full.weights_hash, train::train(cfg(None), &mut quiet, &never).unwrap().weights_hash);
    let dir = tempfile::tempdir().unwrap();
    train::train(TrainConfig { epochs: 1, ..cfg(Some(dir.path())) }, &mut quiet, &never).unwrap();
    let saved = Checkpoint::load(&dir.path().join("last.safetensors")).unwrap();
    assert_eq!(saved.buffers.len(), 2, "bottleneck batch-norm running mean and variance");
    let more = ResumeOverrides { epochs: Some(2), ..Default::default() };
    let resumed = train::resume(&dir.path().join("last.safetensors"), more, &mut quiet, &never).unwrap();
    assert_eq!(resumed.weights_hash, full.weights_hash);
}

/// Random labels are a data option: seeded, reproducible, resumable; `random` keeps one draw,
/// `random-redraw` draws per epoch; a network can fit them only by memorising, so the test
/// accuracy (true labels) stays near chance while training on the bundled subset.
#[test]
fn random_labels_are_seeded_and_resume_bit_for_bit() {
    use goldpan_core::train::batches::random_labels;
    let a = random_labels(3, 0, 1000, 10);
    assert_eq!(a, random_labels(3, 0, 1000, 10));
    assert_ne!(a, random_labels(3, 1, 1000, 10));
    assert_ne!(a, random_labels(4, 0, 1000, 10));
    let counts = (0..10).map(|c| a.iter().filter(|&&l| l == c).count()).collect::<Vec<_>>();
    assert!(counts.iter().all(|&k| (60..=140).contains(&k)), "roughly uniform: {counts:?}");

    let never = AtomicBool::new(false);
    for labels in ["random", "random-redraw"] {
        let cfg = TrainConfig { labels: labels.into(), ..small(9, None) };
        let full = train::train(cfg.clone(), &mut quiet, &never).unwrap();
        assert!(full.test_accuracy < 0.35, "{labels}: test accuracy {} on true labels", full.test_accuracy);
        let truth = train::train(small(9, None), &mut quiet, &never).unwrap();
        assert_ne!(full.weights_hash, truth.weights_hash);
        // Resume from the epoch-1 checkpoint reaches the same weights.
        let dir = tempfile::tempdir().unwrap();
        let cfg = TrainConfig { out_dir: Some(dir.path().to_path_buf()), ..cfg };
        train::train(cfg, &mut quiet, &never).unwrap();
        let resumed =
            train::resume(&dir.path().join("epoch-1.safetensors"), Default::default(), &mut quiet, &never).unwrap();
        assert_eq!(resumed.weights_hash, full.weights_hash, "{labels}: resume");
    }
    let bad = TrainConfig { labels: "shuffled".into(), ..small(0, None) };
    let err = train::train(bad, &mut quiet, &never).unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
}
