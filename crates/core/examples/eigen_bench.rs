//! The dense symmetric eigenvalue solvers alone, on a random symmetric matrix (entries uniform
//! in ±½): goldpan's two-stage reduction (`crate::linalg`) against faer's one-stage
//! `self_adjoint_eigenvalues`, both in f32 on every core.
//!
//! `cargo run --release -p goldpan-core --example eigen_bench -- N [BAND…] [--faer]` prints a
//! line per solver: seconds and the largest eigenvalue (to compare accuracy against f64).
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).expect("usage: eigen_bench N [BAND…] [--faer]");
    let mut bands: Vec<usize> = args[1..].iter().filter_map(|a| a.parse().ok()).collect();
    if bands.is_empty() {
        bands.push(goldpan_core::linalg::default_band(n));
    }
    let mut state = 1u64;
    let mut a = faer::Mat::<f32>::zeros(n, n);
    for j in 0..n {
        for i in j..n {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let x = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            a[(i, j)] = x;
            a[(j, i)] = x;
        }
    }
    for b in bands {
        let t = Instant::now();
        let v = goldpan_core::linalg::symmetric_eigenvalues(a.clone(), b).expect("eigenvalues");
        println!("two-stage b={b}: {:.2} s, λ_max {}", t.elapsed().as_secs_f64(), v[n - 1]);
    }
    if args.iter().any(|a| a == "--faer") {
        faer::set_global_parallelism(faer::Par::rayon(0));
        let t = Instant::now();
        let v = a.self_adjoint_eigenvalues(faer::Side::Lower).expect("eigenvalues");
        println!("faer one-stage: {:.2} s, λ_max {}", t.elapsed().as_secs_f64(), v[n - 1]);
    }
}
