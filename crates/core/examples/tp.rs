#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    for _ in 0..2 {
        let r = goldpan_core::bench::throughput(&a[0], a[1].parse().unwrap(), goldpan_core::bench::BenchMode::Train, a[2].parse().unwrap(), 3, 0).unwrap();
        print!("{} ", r.images_per_sec as u64);
    }
    println!();
}
