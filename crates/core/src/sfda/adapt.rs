//! Adaptation of a source model to unlabelled target data: PUL, its KL-only control, SHOT-IM,
//! SHOT, AdaBN, or nothing.
//!
//! The target training split's labels are discarded when it is loaded; the target test split
//! is used only to report accuracy. Every training method runs the student in training mode
//! (dropout, batch statistics that also move the running ones) with SHOT's Nesterov SGD and
//! `(1 + 10p)^−0.75` schedule; the classifier (netC) is frozen for SHOT and SHOT-IM, and for
//! PUL and KL-only unless `pul.freezeClassifier` is false.
use super::common::{self, load, load_model, predict, save_model};
use super::losses::{self, distillation_kl, information_maximization};
use super::{AdaptConfig, Attach, Labels, Method};
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::models::{self, layers, mix_seed, Initializer, Mode, Model, Params, CLASSIFIER_PREFIX};
use crate::train::{batches, evaluate, weights_hash, EvalResult, Progress, ProgressKind, Sgd};
use candle_core::{Device, Tensor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdaptResult {
    pub method: Method,
    /// The source model on the target test split.
    pub before: EvalResult,
    pub after: EvalResult,
    /// Target test accuracy after each epoch (reported, never used for any choice).
    pub epoch_accuracy: Vec<f64>,
    /// The label-free selection criterion on the target training split, before and after:
    /// mutual information between inputs and predictions, `H(p̄) − mean H(p)`.
    pub mutual_information_before: f64,
    pub mutual_information_after: f64,
    pub epochs: usize,
    pub steps: usize,
    pub wall_sec: f64,
    pub checkpoint: Option<PathBuf>,
    pub weights_hash: String,
}

/// PUL's projector `Linear(d → hidden) → ReLU → Linear(hidden → classes)`, initialised as
/// PyTorch's `nn.Linear` from its own seed stream.
struct Projector {
    params: Params,
    layers: [(Tensor, Tensor); 2],
}

impl Projector {
    fn new(input: usize, hidden: usize, classes: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut init = Initializer::new(mix_seed(seed, common::PROJECTOR_STREAM));
        let mut params = Params::default();
        let mut layer = |name: &str, fan_in: usize, out: usize| -> Result<(Tensor, Tensor)> {
            let w = params.add(format!("projector.{name}.weight"), init.fan_in_uniform((out, fan_in), fan_in, device)?);
            let b = params.add(format!("projector.{name}.bias"), init.fan_in_uniform(out, fan_in, device)?);
            Ok((w, b))
        };
        let first = layer("0", input, hidden)?;
        let second = layer("1", hidden, classes)?;
        Ok(Self { params, layers: [first, second] })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [(w1, b1), (w2, b2)] = &self.layers;
        layers::linear(&layers::linear_relu(x, w1, b1)?, w2, b2)
    }
}

/// The random labels of PUL for one epoch: uniform over `classes`, per sample, from the run's
/// seed (and the epoch, when redrawn).
fn random_labels(seed: u64, epoch: usize, n: usize, classes: usize, labels: Labels) -> Vec<u32> {
    let stream = match labels {
        Labels::Fixed => 0,
        Labels::Redraw => 1 + epoch as u64,
    };
    batches::random_labels(seed, stream, n, classes)
}

fn criterion(model: &dyn Model, set: &Dataset, batch: usize, device: &Device) -> Result<f64> {
    let (probs, _) = predict(model, set, batch, device, false)?;
    Ok(losses::mutual_information(&probs, probs.len() / set.len().max(1)))
}

/// Re-estimates the batch-norm statistics on `set` (AdaBN): one pass in order, running
/// statistics set to the mean over batches.
fn calibrate(model: &dyn Model, set: &Dataset, batch: usize, device: &Device, cancel: &AtomicBool) -> Result<()> {
    let order: Vec<u32> = (0..set.len() as u32).collect();
    for (b, idx) in order.chunks(batch).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled { at: "during batch-norm re-estimation".into(), checkpoint: None });
        }
        let (x, _) = batches::gather(set, idx, device)?;
        crate::ops::no_grad(|| model.forward(&x, Mode::Calibrate { batch: b }))?;
    }
    Ok(())
}

pub fn adapt(cfg: AdaptConfig, on_progress: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<AdaptResult> {
    cfg.validate()?;
    let start = Instant::now();
    let device = crate::device::resolve(&cfg.device)?;
    let (student, ckpt) = load_model(&cfg.from, &device)?;
    let spec = models::spec(&ckpt.config.model)?;
    let Some((backbone_width, bottleneck_width)) = student.stage_widths() else {
        return Err(Error::config(
            "from",
            format!("{} has no bottleneck/classifier split; SFDA uses lenet-base or dtn", spec.name),
        ));
    };
    let mut train = load(&cfg.target, &cfg.data_dir, Split::Train, spec.input, cfg.train_limit)?;
    // Unsupervised: the target training labels are dropped before anything can read them.
    train.labels.fill(0);
    let test = load(&cfg.target, &cfg.data_dir, Split::Test, spec.input, cfg.test_limit)?;
    let eval_batch = cfg.batch_size.max(500);
    let before = evaluate(student.as_ref(), &test, eval_batch, &device, Some(cancel))?;
    let mutual_information_before = criterion(student.as_ref(), &train, eval_batch, &device)?;
    let epochs = cfg.epochs();

    let mut epoch_accuracy = Vec::new();
    let mut steps = 0;
    match cfg.method {
        Method::None => {}
        Method::Adabn => calibrate(student.as_ref(), &train, cfg.batch_size, &device, cancel)?,
        _ => {
            let teacher = matches!(cfg.method, Method::Pul | Method::KlOnly)
                .then(|| load_model(&cfg.from, &device))
                .transpose()?;
            let run = Run {
                cfg: &cfg,
                student: student.as_ref(),
                teacher: teacher.as_ref().map(|t| t.0.as_ref()),
                device: &device,
            };
            let attach_width = match cfg.pul.attach {
                Attach::Backbone => backbone_width,
                Attach::Bottleneck => bottleneck_width,
            };
            (epoch_accuracy, steps) = run.train(&train, &test, attach_width, epochs, on_progress, cancel, start)?;
        }
    }
    let after = evaluate(student.as_ref(), &test, eval_batch, &device, Some(cancel))?;
    let mutual_information_after = criterion(student.as_ref(), &train, eval_batch, &device)?;
    let checkpoint = cfg.out_dir.as_ref().map(|d| d.join("adapted.safetensors"));
    if let Some(path) = &checkpoint {
        let mut config = ckpt.config.clone();
        config.dataset = cfg.target.clone();
        config.data_dir = cfg.data_dir.clone();
        let record = serde_json::json!({
            "stage": "adapt", "config": cfg, "source": ckpt.sfda,
            "targetAccuracyBefore": before.accuracy, "targetAccuracyAfter": after.accuracy,
            "mutualInformationBefore": mutual_information_before, "mutualInformationAfter": mutual_information_after,
        });
        save_model(student.as_ref(), config, record, path)?;
    }
    Ok(AdaptResult {
        method: cfg.method,
        before,
        after,
        epoch_accuracy,
        mutual_information_before,
        mutual_information_after,
        epochs: if cfg.method.trains() { epochs } else { 0 },
        steps,
        wall_sec: start.elapsed().as_secs_f64(),
        checkpoint,
        weights_hash: weights_hash(student.params())?,
    })
}

/// One gradient-based adaptation run.
struct Run<'a> {
    cfg: &'a AdaptConfig,
    student: &'a dyn Model,
    teacher: Option<&'a dyn Model>,
    device: &'a Device,
}

impl Run<'_> {
    /// The student's parameters that this method trains (plus the projector's).
    fn trainable(&self, projector: Option<&Projector>) -> Params {
        let freeze_classifier = match self.cfg.method {
            Method::Pul | Method::KlOnly => self.cfg.pul.freeze_classifier,
            _ => true,
        };
        let mut p = Params::default();
        for (name, var) in self.student.params().iter() {
            if !(freeze_classifier && name.starts_with(CLASSIFIER_PREFIX)) {
                p.add(name, var.clone());
            }
        }
        for (name, var) in projector.iter().flat_map(|pr| pr.params.iter()) {
            p.add(name, var.clone());
        }
        p
    }

    #[allow(clippy::too_many_arguments)]
    fn train(
        &self,
        train: &Dataset,
        test: &Dataset,
        attach_width: usize,
        epochs: usize,
        on_progress: &mut dyn FnMut(&Progress),
        cancel: &AtomicBool,
        start: Instant,
    ) -> Result<(Vec<f64>, usize)> {
        let (cfg, device) = (self.cfg, self.device);
        let pul = &cfg.pul;
        let projector = (cfg.method == Method::Pul)
            .then(|| Projector::new(attach_width, pul.hidden, pul.classes, cfg.seed, device))
            .transpose()?;
        let trainable = self.trainable(projector.as_ref());
        let mut sgd = Sgd::new(&trainable, cfg.lr(), cfg.momentum, cfg.weight_decay, cfg.nesterov)?;
        let n = train.len();
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        let max_iter = epochs * steps_per_epoch;
        let (mut step, mut epoch_accuracy) = (0usize, Vec::new());
        let mut fixed_labels = None;
        for epoch in 0..epochs {
            let random = match (cfg.method, pul.labels) {
                (Method::Pul, Labels::Fixed) => Some(
                    fixed_labels
                        .get_or_insert_with(|| random_labels(cfg.seed, 0, n, pul.classes, Labels::Fixed))
                        .clone(),
                ),
                (Method::Pul, Labels::Redraw) => Some(random_labels(cfg.seed, epoch, n, pul.classes, Labels::Redraw)),
                _ => None,
            };
            let pseudo = (cfg.method == Method::Shot)
                .then(|| -> Result<Vec<u32>> {
                    let (probs, feats) = predict(self.student, train, cfg.batch_size.max(500), device, true)?;
                    let classes = probs.len() / n;
                    Ok(super::cosine_pseudo_labels(&feats, feats.len() / n, &probs, classes))
                })
                .transpose()?;
            let order = batches::epoch_order(cfg.seed, epoch, n);
            let (mut window_loss, mut window_steps, mut window_start) = (0f64, 0usize, Instant::now());
            for (b, idx) in order.chunks(cfg.batch_size).enumerate() {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled {
                        at: format!("at epoch {}, step {step}", epoch + 1),
                        checkpoint: None,
                    });
                }
                sgd.lr = common::scheduled_lr(cfg.lr(), step + 1, max_iter);
                let (x, _) = batches::gather(train, idx, device)?;
                let pick = |labels: &[u32]| {
                    Tensor::from_vec(idx.iter().map(|&i| labels[i as usize]).collect::<Vec<u32>>(), idx.len(), device)
                };
                let stages = self
                    .student
                    .stages(&x, Mode::Train { seed: batches::step_seed(cfg.seed, step) })
                    .ok_or_else(|| Error::Internal("model without stages".into()))??;
                let distill = |student: &Tensor| -> Result<Tensor> {
                    let teacher = self.teacher.ok_or_else(|| Error::Internal("no teacher".into()))?;
                    let t = crate::ops::no_grad(|| teacher.forward(&x, Mode::Eval))?.detach();
                    Ok((distillation_kl(&t, student, pul.temperature)? * pul.lambda)?)
                };
                let im = |logits: &Tensor| -> Result<Tensor> {
                    let terms = information_maximization(logits, cfg.shot.epsilon)?;
                    let loss = if cfg.shot.diversity { terms.loss()? } else { terms.entropy };
                    Ok((loss * cfg.shot.ent_par)?)
                };
                let loss = match cfg.method {
                    Method::Pul => {
                        let features = match pul.attach {
                            Attach::Backbone => &stages.backbone,
                            Attach::Bottleneck => &stages.bottleneck,
                        };
                        let projected = projector.as_ref().expect("PUL has a projector").forward(features)?;
                        let labels = pick(random.as_deref().expect("PUL has labels"))?;
                        (layers::cross_entropy(&projected, &labels)? + distill(&stages.logits)?)?
                    }
                    Method::KlOnly => distill(&stages.logits)?,
                    Method::ShotIm => im(&stages.logits)?,
                    Method::Shot => {
                        let labels = pick(pseudo.as_deref().expect("SHOT has pseudo-labels"))?;
                        ((layers::cross_entropy(&stages.logits, &labels)? * cfg.shot.cls_par)? + im(&stages.logits)?)?
                    }
                    Method::Adabn | Method::None => unreachable!("no gradient steps"),
                };
                let value = loss.to_scalar::<f32>()?;
                if !value.is_finite() {
                    return Err(Error::NanLoss { value, epoch: epoch + 1, step: step + 1, checkpoint: None });
                }
                sgd.step(&trainable, &loss.backward()?)?;
                step += 1;
                (window_loss, window_steps) = (window_loss + value as f64, window_steps + 1);
                if step % cfg.progress_every == 0 {
                    on_progress(&Progress {
                        kind: ProgressKind::Step,
                        epoch: epoch + 1,
                        epochs,
                        step,
                        step_in_epoch: b + 1,
                        steps_per_epoch,
                        loss: window_loss / window_steps as f64,
                        accuracy: f64::NAN,
                        images_per_sec: (window_steps * cfg.batch_size) as f64
                            / window_start.elapsed().as_secs_f64().max(1e-9),
                        elapsed_sec: start.elapsed().as_secs_f64(),
                        test_loss: None,
                        test_accuracy: None,
                        checkpoint: None,
                        diagnostics: None,
                    });
                    (window_loss, window_steps, window_start) = (0.0, 0, Instant::now());
                }
            }
            let eval = evaluate(self.student, test, cfg.batch_size.max(500), device, Some(cancel))?;
            epoch_accuracy.push(eval.accuracy);
            on_progress(&Progress {
                kind: ProgressKind::Epoch,
                epoch: epoch + 1,
                epochs,
                step,
                step_in_epoch: steps_per_epoch,
                steps_per_epoch,
                loss: f64::NAN,
                accuracy: f64::NAN,
                images_per_sec: 0.0,
                elapsed_sec: start.elapsed().as_secs_f64(),
                test_loss: Some(eval.loss),
                test_accuracy: Some(eval.accuracy),
                checkpoint: None,
                diagnostics: None,
            });
        }
        Ok((epoch_accuracy, step))
    }
}
