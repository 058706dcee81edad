use candle_core::Device;
use goldpan_core::data::{self, Split};
use goldpan_core::hessian::spectra::SymmetricOperator;
use goldpan_core::models::Mode;
use goldpan_core::ntk::{Kernel, NtkOperator, Products};
use goldpan_core::program::{self, Act};
use goldpan_core::train::TrainState;
use std::time::Instant;
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() -> goldpan_core::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(10000, |s| s.parse().unwrap());
    let engine = std::env::args().nth(2).is_some_and(|s| s == "engine");
    let reps: usize = std::env::args().nth(3).map_or(5, |s| s.parse().unwrap());
    let model = TrainState::load("runs/eq3-true/last.safetensors".as_ref(), &Device::Cpu)?.model;
    let prog = model.program(Mode::Eval)?;
    let w = program::weights::<f32>(model.params())?;
    let set = data::load_as("mnist", "../shared/data".as_ref(), Split::Train, (1, 28, 28))?;
    let order: Vec<u32> = (0..n as u32).collect();
    let batches: Vec<Act<f32>> = order
        .chunks(500)
        .map(|idx| Act::from_tensor(&goldpan_core::train::batches::gather(&set, idx, &Device::Cpu)?.0))
        .collect::<goldpan_core::Result<_>>()?;
    let u: Vec<f64> = (0..n * 10).map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5).collect();
    let mut times = Vec::new();
    for _ in 0..3 {
        let mut op = NtkOperator::new(&prog, &w, &batches, Kernel::Full, 10, None);
        if engine {
            op = op.products_by(Products::Engine);
        }
        let t = Instant::now();
        op.apply(&u)?;
        times.push(t.elapsed().as_secs_f64());
    }
    eprintln!("setup + product: {times:.3?}");
    let mut op = NtkOperator::new(&prog, &w, &batches, Kernel::Full, 10, None);
    if engine {
        op = op.products_by(Products::Engine);
    }
    op.apply(&u)?;
    let b: usize = std::env::var("B").map_or(1, |s| s.parse().unwrap());
    let us: Vec<Vec<f64>> = (0..b).map(|j| u.iter().map(|x| x * (j + 1) as f64).collect()).collect();
    let t = Instant::now();
    for _ in 0..reps {
        op.apply_many(&us)?;
    }
    eprintln!("block {b}: per vector {:.4} s", t.elapsed().as_secs_f64() / (reps * b) as f64);
    let t = Instant::now();
    for _ in 0..reps {
        op.apply(&u)?;
    }
    eprintln!("product: {:.3} s", t.elapsed().as_secs_f64() / reps.max(1) as f64);
    Ok(())
}
