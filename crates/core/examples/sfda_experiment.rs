//! Runs SFDA stages from the command line, for experiments and ablations outside the CLI:
//!
//! `sfda_experiment source <mnist|usps|svhn> <seed> <epochs> <out_dir> [data_dir]`
//! `sfda_experiment adapt <from.safetensors> <target> <seed> '<AdaptConfig JSON>' [data_dir]`
//!
//! Prints one JSON result per line.
use goldpan_core::sfda::{self, AdaptConfig, SourceConfig};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> goldpan_core::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = |i: usize| PathBuf::from(args.get(i).cloned().unwrap_or_else(|| "../shared/data".into()));
    let cancel = AtomicBool::new(false);
    let mut log = |p: &goldpan_core::train::Progress| {
        if let Some(acc) = p.test_accuracy {
            eprintln!("epoch {}/{}: held-out/target accuracy {:.4} ({:.0} s)", p.epoch, p.epochs, acc, p.elapsed_sec);
        }
    };
    match args.first().map(String::as_str) {
        Some("source") => {
            let cfg = SourceConfig {
                source: args[1].clone(),
                seed: args[2].parse().expect("seed"),
                epochs: args[3].parse().expect("epochs"),
                out_dir: Some(PathBuf::from(&args[4])),
                data_dir: data(5),
                ..SourceConfig::default()
            };
            let r = sfda::train_source(cfg, &mut log, &cancel)?;
            println!("{}", serde_json::to_string(&r).expect("json"));
        }
        Some("adapt") => {
            let mut cfg: AdaptConfig = serde_json::from_str(&args[4]).expect("AdaptConfig JSON");
            cfg.from = PathBuf::from(&args[1]);
            cfg.target = args[2].clone();
            cfg.seed = args[3].parse().expect("seed");
            cfg.data_dir = data(5);
            let r = sfda::adapt(cfg.clone(), &mut log, &cancel)?;
            println!("{}", serde_json::json!({ "config": cfg, "result": r }));
        }
        _ => eprintln!("usage: see the top of examples/sfda_experiment.rs"),
    }
    Ok(())
}
