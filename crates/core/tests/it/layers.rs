//! Stochastic and normalising layers against brute-force computations with known answers.
use candle_core::{Device, Tensor, Var};
use goldpan_core::models::layers::{self, BatchNorm};

fn vec(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

#[test]
fn batch_norm_matches_the_formula_and_updates_running_stats() {
    let dev = &Device::Cpu;
    // N = 4 samples, C = 2 channels.
    let x = Tensor::new(&[[1f64, 10.0], [2.0, 20.0], [3.0, 30.0], [6.0, 40.0]], dev).unwrap();
    let bn = BatchNorm {
        gamma: Tensor::new(&[2f64, 1.0], dev).unwrap(),
        beta: Tensor::new(&[0.5f64, 0.0], dev).unwrap(),
        running_mean: Var::from_tensor(&Tensor::zeros(2, candle_core::DType::F64, dev).unwrap()).unwrap(),
        running_var: Var::from_tensor(&Tensor::ones(2, candle_core::DType::F64, dev).unwrap()).unwrap(),
        momentum: 0.1,
        eps: 1e-5,
    };
    let y = vec(&bn.forward(&x, true).unwrap());
    // Channel 0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3.
    let z0 = |v: f64| 2.0 * (v - 3.0) / (3.5f64 + 1e-5).sqrt() + 0.5;
    // Channel 1: mean 25, biased var (225+25+25+225)/4 = 125, unbiased 500/3.
    let z1 = |v: f64| (v - 25.0) / (125f64 + 1e-5).sqrt();
    let expected = [z0(1.0), z1(10.0), z0(2.0), z1(20.0), z0(3.0), z1(30.0), z0(6.0), z1(40.0)];
    for (a, b) in y.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let rm = vec(bn.running_mean.as_tensor());
    let rv = vec(bn.running_var.as_tensor());
    assert!((rm[0] - 0.3).abs() < 1e-12 && (rm[1] - 2.5).abs() < 1e-12);
    assert!((rv[0] - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-12 && (rv[1] - (0.9 + 0.1 * 500.0 / 3.0)).abs() < 1e-12);
    // Evaluation uses the running statistics and changes nothing.
    let e = vec(&bn.forward(&x, false).unwrap());
    assert!((e[0] - (2.0 * (1.0 - rm[0]) / (rv[0] + 1e-5).sqrt() + 0.5)).abs() < 1e-12);
    assert_eq!(vec(bn.running_mean.as_tensor()), rm);
}

#[test]
fn dropout2d_drops_whole_channels_at_rate_p_and_rescales() {
    let x = Tensor::ones((200, 50, 2, 2), candle_core::DType::F64, &Device::Cpu).unwrap();
    let y = vec(&layers::dropout2d(&x, 0.3, Some(1)).unwrap());
    let channels: Vec<&[f64]> = y.chunks(4).collect();
    assert!(channels.iter().all(|c| c.iter().all(|&v| v == c[0])), "a channel is dropped or kept whole");
    assert!(channels.iter().all(|c| c[0] == 0.0 || (c[0] - 1.0 / 0.7).abs() < 1e-12));
    let dropped = channels.iter().filter(|c| c[0] == 0.0).count() as f64 / channels.len() as f64;
    assert!((dropped - 0.3).abs() < 0.02, "dropped fraction {dropped}");
    // Same seed, same mask; other seed, other mask; evaluation is the identity.
    assert_eq!(y, vec(&layers::dropout2d(&x, 0.3, Some(1)).unwrap()));
    assert_ne!(y, vec(&layers::dropout2d(&x, 0.3, Some(2)).unwrap()));
    assert_eq!(vec(&layers::dropout2d(&x, 0.3, None).unwrap()), vec(&x));
}

#[test]
fn weight_norm_rows_have_norm_g() {
    let dev = &Device::Cpu;
    let v = Tensor::new(&[[3f64, 4.0], [1.0, 0.0]], dev).unwrap();
    let g = Tensor::new(&[10f64, 2.0], dev).unwrap();
    let b = Tensor::zeros(2, candle_core::DType::F64, dev).unwrap();
    let eye = Tensor::new(&[[1f64, 0.0], [0.0, 1.0]], dev).unwrap();
    // With x = I the output rows are the columns of wᵀ: w = [[6, 8], [2, 0]].
    assert_eq!(vec(&layers::weight_norm_linear(&eye, &v, &g, &b).unwrap()), [6.0, 2.0, 8.0, 0.0]);
}
