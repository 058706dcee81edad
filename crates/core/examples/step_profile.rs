//! Where a LeNet5 training step spends its time: forward, loss, backward, SGD, per batch size.
//!
//! `[GOLDPAN_MODEL=dtn] cargo run --release -p goldpan-core --example step_profile [batch] [iters] [ops]`
//! (run under `perf record -g` for the per-op breakdown; `MIMALLOC_PURGE_DELAY=-1` matches the
//! addon, which keeps freed memory while a run is in progress).
use candle_core::{Device, Tensor};
use goldpan_core::models::{self, layers, Mode};
use goldpan_core::train::Sgd;
use std::time::{Duration, Instant};

// As in the napi addon: freed buffers are reused instead of returned to the OS and faulted in
// again on every step.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> goldpan_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let iters: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let dev = Device::Cpu;
    let model = std::env::var("GOLDPAN_MODEL").unwrap_or_else(|_| "lenet5".into());
    let spec = models::spec(&model)?;
    let net = spec.build(0, &dev)?;
    let mut sgd = Sgd::new(net.params(), 0.01, 0.9, 5e-4, false)?;
    let x = Tensor::randn(0f32, 1.0, (batch, spec.input.0, spec.input.1, spec.input.2), &dev)?;
    // Varied labels: with a single class the net saturates within a few steps of the same batch,
    // and the denormal gradients that follow would make every kernel look slow.
    let y = Tensor::from_vec((0..batch as u32).map(|i| (i * 7 + 3) % 10).collect::<Vec<_>>(), batch, &dev)?;
    let mut t = [Duration::ZERO; 4];
    for i in 0..iters + 5 {
        let s0 = Instant::now();
        let logits = net.forward(&x, Mode::Train { seed: 0 })?;
        let s1 = Instant::now();
        let loss = layers::cross_entropy(&logits, &y)?;
        loss.to_scalar::<f32>()?;
        let s2 = Instant::now();
        let grads = loss.backward()?;
        let s3 = Instant::now();
        sgd.step(net.params(), &grads)?;
        let s4 = Instant::now();
        if i >= 5 {
            for (k, d) in [s1 - s0, s2 - s1, s3 - s2, s4 - s3].into_iter().enumerate() {
                t[k] += d;
            }
        }
    }
    let total: Duration = t.iter().sum();
    println!("batch {batch}: {:.0} images/s", (batch * iters) as f64 / total.as_secs_f64());
    for (name, d) in ["forward", "loss", "backward", "sgd"].iter().zip(t) {
        println!(
            "  {name:<9} {:>7.3} ms/step  {:>5.1} %",
            d.as_secs_f64() * 1e3 / iters as f64,
            100.0 * d.as_secs_f64() / total.as_secs_f64()
        );
    }
    if args.next().as_deref() != Some("ops") {
        return Ok(());
    }
    // Each layer alone at this batch size: forward, and forward + backward.
    let v = |dims: &[usize]| candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, dims, &dev).unwrap()).unwrap();
    let x = Tensor::randn(0f32, 1.0, (batch, 1, 28, 28), &dev)?;
    let (w1, b1) = (v(&[6, 1, 5, 5]), v(&[6]));
    let h1 = v(&[batch, 6, 24, 24]);
    let p1 = v(&[batch, 6, 12, 12]);
    let (w2, b2) = (v(&[16, 6, 5, 5]), v(&[16]));
    let h2 = v(&[batch, 16, 8, 8]);
    let f1 = v(&[batch, 256]);
    let (fw1, fb1) = (v(&[120, 256]), v(&[120]));
    let logits = v(&[batch, 10]);
    type Layer<'a> = (&'a str, Box<dyn Fn() -> Tensor + 'a>);
    let layers: Vec<Layer> = vec![
        ("conv1 (1→6, input not tracked)", Box::new(|| layers::conv2d(&x, &w1, &b1).unwrap())),
        ("max-pool 24→12 ×6", Box::new(|| layers::max_pool2d(&h1, 2).unwrap())),
        ("relu 6×12×12", Box::new(|| layers::relu(&p1).unwrap())),
        ("conv2 (6→16)", Box::new(|| layers::conv2d(&p1, &w2, &b2).unwrap())),
        ("max-pool 8→4 ×16", Box::new(|| layers::max_pool2d(&h2, 2).unwrap())),
        ("fc1 256→120 + relu", Box::new(|| layers::linear_relu(&f1, &fw1, &fb1).unwrap())),
        ("cross-entropy", Box::new(|| layers::cross_entropy(&logits, &y).unwrap())),
    ];
    println!("layers at batch {batch} (ms): forward | forward+backward");
    for (name, f) in &layers {
        let fwd = time_ms(iters, || drop(f()));
        let both = time_ms(iters, || drop(f().sum_all().unwrap().backward().unwrap()));
        println!("  {name:<32} {fwd:>7.3} | {both:>7.3}");
    }
    Ok(())
}

/// Times one closure, ms per call.
pub fn time_ms(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e3 / iters as f64
}
