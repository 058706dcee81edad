//! Where a LeNet5 training step spends its time: forward, loss, backward, SGD, per batch size.
//!
//! `cargo run --release -p goldpan-core --example step_profile [batch] [iters] [ops]`
//! (run under `perf record -g` for the per-op breakdown).
use candle_core::{Device, Tensor};
use goldpan_core::models::{self, layers, Mode};
use goldpan_core::train::Sgd;
use std::time::{Duration, Instant};

fn main() -> goldpan_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let iters: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let dev = Device::Cpu;
    let net = models::spec("lenet5")?.build(0, &dev)?;
    let mut sgd = Sgd::new(net.params(), 0.01, 0.9, 5e-4, false)?;
    let x = Tensor::randn(0f32, 1.0, (batch, 1, 28, 28), &dev)?;
    let y = Tensor::zeros(batch, candle_core::DType::U32, &dev)?;
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
        println!("  {name:<9} {:>7.3} ms/step  {:>5.1} %", d.as_secs_f64() * 1e3 / iters as f64, 100.0 * d.as_secs_f64() / total.as_secs_f64());
    }
    if args.next().as_deref() != Some("ops") {
        return Ok(());
    }
    // candle's own ops for each conv layer, alone, at this batch size (the before/after baseline).
    let v = |dims: (usize, usize, usize, usize)| candle_core::Var::randn(0f32, 1.0, dims, &dev).unwrap();
    let x1 = Tensor::randn(0f32, 1.0, (batch, 1, 28, 28), &dev)?;
    let (w1, x2, w2) = (v((6, 1, 5, 5)), v((batch, 6, 12, 12)), v((16, 6, 5, 5)));
    let y1 = x1.conv2d(&w1, 0, 1, 1, 1)?;
    let y2 = x2.conv2d(&w2, 0, 1, 1, 1)?;
    let g1 = Tensor::ones_like(&y1)?;
    let g2 = Tensor::ones_like(&y2)?;
    let x2t = x2.as_tensor().detach();
    let w2t = w2.as_tensor().detach();
    let rows: Vec<(&str, f64)> = vec![
        ("conv1 forward", time_ms(iters, || drop(x1.conv2d(&w1, 0, 1, 1, 1).unwrap()))),
        ("conv1 dW (conv2d)", time_ms(iters, || drop(x1.transpose(0, 1).unwrap().conv2d(&g1.transpose(0, 1).unwrap(), 0, 1, 1, 1).unwrap()))),
        ("conv2 forward", time_ms(iters, || drop(x2t.conv2d(&w2t, 0, 1, 1, 1).unwrap()))),
        ("conv2 dW (conv2d)", time_ms(iters, || drop(x2t.transpose(0, 1).unwrap().conv2d(&g2.transpose(0, 1).unwrap(), 0, 1, 1, 1).unwrap()))),
        ("conv2 dX (conv_transpose2d)", time_ms(iters, || drop(g2.conv_transpose2d(&w2t, 0, 0, 1, 1).unwrap()))),
        ("pool1 (gather at argmax)", time_ms(iters, || drop(layers::max_pool2d(&y1, 2).unwrap()))),
        ("pool1 backward", time_ms(iters, || drop(layers::max_pool2d(&(y1.clone() * 1.0).unwrap(), 2).unwrap().sum_all().unwrap().backward()))),
    ];
    println!("ops at batch {batch}:");
    for (name, ms) in rows {
        println!("  {name:<28} {ms:>7.3} ms");
    }
    let _ = (y2, x2);
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
