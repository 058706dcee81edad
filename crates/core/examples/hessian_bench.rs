//! goldpan's side of `bench/hessian.mjs`: per model, the time of one loss gradient (the training
//! path: candle autograd on the fast ops; and the program engine's), of one exact Hessian–vector
//! product at the same batch, and the top-5 Hessian eigenvalues of the loss over the first
//! `eig-n` MNIST training images, in evaluation mode (PyHessian's setting), f32.
//!
//! `cargo run --release -p goldpan-core --example hessian_bench -- [--models lenet5,lenet-base,dtn]
//!  [--batch 512] [--reps 3] [--eig-n 1000] [--eig-batch 500] [--data DIR] [--skip-eigen]
//!  [--checkpoint MODEL=PATH]…` prints one JSON object on stdout.
use candle_core::{Device, Tensor};
use goldpan_core::data::{self, Split};
use goldpan_core::hessian::operator::{batches, DatasetHessian};
use goldpan_core::hessian::spectra::{self, EigenConfig};
use goldpan_core::models::{self, layers, Mode, Model};
use goldpan_core::program::{self, Act, Loss};
use goldpan_core::train::TrainState;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    models: Vec<String>,
    batch: usize,
    reps: usize,
    eig_n: usize,
    eig_batch: usize,
    data: PathBuf,
    skip_eigen: bool,
    checkpoints: Vec<(String, PathBuf)>,
}

fn parse() -> Args {
    let mut a = Args {
        models: vec!["lenet5".into(), "lenet-base".into(), "dtn".into()],
        batch: 512,
        reps: 3,
        eig_n: 1000,
        eig_batch: 500,
        data: PathBuf::from("../shared/data"),
        skip_eigen: false,
        checkpoints: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--models" => a.models = value().split(',').map(String::from).collect(),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--reps" => a.reps = value().parse().expect("--reps N"),
            "--eig-n" => a.eig_n = value().parse().expect("--eig-n N"),
            "--eig-batch" => a.eig_batch = value().parse().expect("--eig-batch N"),
            "--data" => a.data = value().into(),
            "--skip-eigen" => a.skip_eigen = true,
            "--checkpoint" => {
                let v = value();
                let (m, p) = v.split_once('=').expect("--checkpoint MODEL=PATH");
                a.checkpoints.push((m.into(), p.into()));
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Median seconds of `reps` runs of `f` after one warm-up run.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn model(args: &Args, name: &str) -> goldpan_core::Result<Box<dyn Model>> {
    match args.checkpoints.iter().find(|(m, _)| m == name) {
        Some((_, path)) => Ok(TrainState::load(path, &Device::Cpu)?.model),
        None => models::spec(name)?.build(0, &Device::Cpu),
    }
}

fn main() -> goldpan_core::Result<()> {
    let args = parse();
    let mut cases = Vec::new();
    let mut eigen = Vec::new();
    for name in &args.models {
        let spec = models::spec(name)?;
        let net = model(&args, name)?;
        let set = data::load_as("mnist", &args.data, Split::Train, spec.input)?;
        let idx: Vec<u32> = (0..args.batch as u32).collect();
        let (x, y) = goldpan_core::train::batches::gather(&set, &idx, &Device::Cpu)?;
        let labels: Vec<u32> = y.to_vec1()?;

        // The training path: forward + cross-entropy + candle backward.
        let grad_train = time(args.reps, || {
            let logits = net.forward(&x, Mode::Eval).unwrap();
            let loss = layers::cross_entropy(&logits, &y).unwrap();
            loss.backward().unwrap();
        });
        let prog = net.program(Mode::Eval)?;
        let w = program::weights::<f32>(net.params())?;
        let xa = Act::<f32>::from_tensor(&x)?;
        let loss = Loss::cross_entropy(&labels, spec.classes)?;
        let grad_engine = time(args.reps, || {
            program::gradient(&prog, &w, &xa, &loss).unwrap();
        });
        let v: Vec<Vec<f32>> = w.iter().map(|p| p.iter().map(|a| a * 0.5 + 0.01).collect()).collect();
        let hvp = time(args.reps, || {
            program::hvp(&prog, &w, &xa, &loss, &v).unwrap();
        });
        eprintln!(
            "{name} b{}: gradient {:.1} ms (engine {:.1} ms), HVP {:.1} ms → {:.2}× the training gradient",
            args.batch,
            grad_train * 1e3,
            grad_engine * 1e3,
            hvp * 1e3,
            hvp / grad_train
        );
        cases.push(json!({
            "model": name, "batch": args.batch, "grad_s": grad_train, "grad_engine_s": grad_engine,
            "hvp_s": hvp, "ratio": hvp / grad_train, "ratio_engine": hvp / grad_engine,
        }));
        let _ = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu)?;

        if !args.skip_eigen {
            let order: Vec<u32> = (0..args.eig_n.min(set.len()) as u32).collect();
            let data = batches::<f32>(&set, &order, &set.labels, args.eig_batch)?;
            let start = Instant::now();
            let mut op = DatasetHessian::new(&prog, &w, &data);
            let top = spectra::top_eigen(&mut op, &EigenConfig { k: 5, ..EigenConfig::default() })?;
            let seconds = start.elapsed().as_secs_f64();
            eprintln!("{name}: top-5 {:?} in {seconds:.1} s, {} HVPs", top.values, top.products);
            eigen.push(json!({
                "model": name, "n": order.len(), "batch": args.eig_batch, "values": top.values,
                "residuals": top.residuals, "seconds": seconds, "hvps": top.products, "converged": top.converged,
            }));
        }
    }
    let threads = std::env::var("CANDLE_NUM_THREADS").ok();
    println!("{}", json!({ "threads": threads, "cases": cases, "eigen": eigen }));
    Ok(())
}
