//! goldpan's side of `bench/ntk.mjs`: the empirical NTK of LeNet5 (evaluation mode, all
//! parameters, f32 Jacobians, f64 kernel) on the first N MNIST training images.
//!
//! Cases: `full-500`, `full-2000` (full 10-class kernel + all eigenvalues), `trace-2000` (trace
//! kernel + all eigenvalues), `top10-10000` (top-10 eigenvalues of the full kernel by Lanczos on
//! NTK-vector products; the kernel is never formed).
//!
//! `cargo run --release -p goldpan-core --example ntk_bench -- [--cases full-500,…]
//!  [--method structured|jacobian] [--data DIR] [--checkpoint PATH] [--n-scale X]
//!  [--eigen-precision f64|f32]` prints one
//! JSON object on stdout.
use candle_core::Device;
use goldpan_core::data::{self, Split};
use goldpan_core::hessian::spectra::{self, EigenConfig};
use goldpan_core::models::{self, Mode};
use goldpan_core::ntk::{self, Kernel, Method, NtkOperator};
use goldpan_core::program::{self, Act};
use goldpan_core::train::TrainState;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> goldpan_core::Result<()> {
    let mut cases = "full-500,full-2000,trace-2000,top10-10000".to_string();
    let (mut method, mut data_dir, mut checkpoint, mut scale) =
        (Method::Structured, PathBuf::from("../shared/data"), None::<PathBuf>, 1.0f64);
    let mut single = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--cases" => cases = value,
            "--method" => method = if value == "jacobian" { Method::Jacobian } else { Method::Structured },
            "--data" => data_dir = value.into(),
            "--checkpoint" => checkpoint = Some(value.into()),
            "--n-scale" => scale = value.parse().expect("--n-scale X"),
            "--eigen-precision" => single = value == "f32",
            other => panic!("unknown flag {other}"),
        }
    }
    let model = match &checkpoint {
        Some(path) => TrainState::load(path, &Device::Cpu)?.model,
        None => models::spec("lenet5")?.build(0, &Device::Cpu)?,
    };
    let prog = model.program(Mode::Eval)?;
    let w = program::weights::<f32>(model.params())?;
    let set = data::load_as("mnist", &data_dir, Split::Train, (1, 28, 28))?;
    let inputs = |n: usize| -> goldpan_core::Result<Vec<Act<f32>>> {
        let order: Vec<u32> = (0..n as u32).collect();
        order
            .chunks(500)
            .map(|idx| Act::from_tensor(&goldpan_core::train::batches::gather(&set, idx, &Device::Cpu)?.0))
            .collect()
    };
    // Untimed warm-up, as the PyTorch side does before each case: thread pools started, code and
    // allocator pages touched once.
    {
        let x = inputs(50)?.remove(0);
        let k = ntk::ntk(&prog, &w, &x, None, Kernel::Full, method, None, usize::MAX, None)?;
        ntk::spectrum(&k, false, single)?;
    }
    let mut results = Vec::new();
    for case in cases.split(',') {
        let (kind, n) = case.split_once('-').expect("case like full-500");
        let n = ((n.parse::<f64>().expect("N") * scale) as usize).max(5);
        let batches = inputs(n)?;
        let start = Instant::now();
        let result = if kind == "top10" {
            let mut op = NtkOperator::new(&prog, &w, &batches, Kernel::Full, 10, None);
            let top = spectra::top_eigen(&mut op, &EigenConfig { k: 10, ..EigenConfig::default() })?;
            let seconds = start.elapsed().as_secs_f64();
            eprintln!("{case} (N={n}): top-10 in {seconds:.1} s, {} products", top.products);
            json!({ "case": case, "n": n, "kernel": "full", "method": "ntvp", "seconds": seconds,
                    "products": top.products, "top10": top.values, "residuals": top.residuals })
        } else {
            let kernel = if kind == "trace" { Kernel::Trace } else { Kernel::Full };
            let mut dims = batches[0].dims.clone();
            dims[0] = n;
            let x = Act::new(batches.iter().flat_map(|b| b.data.iter().copied()).collect(), dims)?;
            let k = ntk::ntk(&prog, &w, &x, None, kernel, method, None, usize::MAX, None)?;
            let kernel_s = start.elapsed().as_secs_f64();
            let s = ntk::spectrum(&k, false, single)?;
            let seconds = start.elapsed().as_secs_f64();
            eprintln!(
                "{case} (N={n}): kernel {}×{} in {kernel_s:.1} s, eigenvalues in {:.1} s",
                k.rows,
                k.cols,
                seconds - kernel_s
            );
            json!({ "case": case, "n": n, "kernel": kind, "method": method, "shape": [k.rows, k.cols],
                    "eigen_precision": if single { "f32" } else { "f64" },
                    "seconds": seconds, "kernel_s": kernel_s, "eigen_s": seconds - kernel_s,
                    "top10": s.eigenvalues.iter().take(10).collect::<Vec<_>>(), "trace": s.trace })
        };
        results.push(result);
    }
    println!("{}", json!({ "threads": std::env::var("CANDLE_NUM_THREADS").ok(), "cases": results }));
    Ok(())
}
