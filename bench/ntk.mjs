// goldpan vs PyTorch: the empirical NTK of LeNet5 (eval mode, 10 logits, all parameters) on the
// first N MNIST training images, one run on this machine.
//
// goldpan: crates/core/examples/ntk_bench.rs (structured method: dense layers by Gram factors,
// convolutions by per-sample Jacobians; eigenvalues by goldpan's two-stage reduction; Lanczos on
// NTK-vector products for top-k). PyTorch: bench/pytorch/ntk.py (torch.func vmap(jacrev) + J·Jᵀ + eigvalsh, the
// neural-tangents way; Lanczos on torch.func vjp/jvp products for top-k).
// Cases: full-500, full-2000 (full 10-class kernel + all eigenvalues), trace-2000 (trace kernel
// + all eigenvalues), top10-10000 (top-10 eigenvalues of the full kernel, matrix-free).
//
// Usage: node bench/ntk.mjs [--cases full-500,trace-2000,top10-10000,full-2000]
//          [--checkpoint PATH] [--threads N] [--data DIR] [--eigen-precision f32|f64]
//          [--max-seconds S] [--reps N]
// --reps N runs both sides N times, alternating (goldpan, PyTorch, goldpan, …), and reports each
// side's median run per case, with all runs' seconds in the JSON: the first run after an idle
// spell is slower on this VM (full-500: 2.8 s vs 2.0–2.3 s for goldpan).
// Writes bench/results/ntk-<UTC time>.json; prints a table on stdout, progress on stderr.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");

const { values: opts } = parseArgs({
  options: {
    cases: { type: "string", default: "full-500,trace-2000,top10-10000,full-2000" },
    checkpoint: { type: "string" },
    threads: { type: "string" },
    data: { type: "string", default: resolve(root, "..", "shared", "data") },
    "eigen-precision": { type: "string", default: "f32" },
    "max-seconds": { type: "string", default: "900" },
    reps: { type: "string", default: "1" },
  },
  strict: true,
});
const threads = opts.threads ?? String(os.availableParallelism?.() ?? os.cpus().length);
const env = { ...process.env, CANDLE_NUM_THREADS: threads, RAYON_NUM_THREADS: threads, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads };

function run(cmd, args, what, extraEnv = {}) {
  process.stderr.write(`[bench] ${what}: ${cmd} ${args.join(" ")}\n`);
  const r = spawnSync(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${what} failed with exit code ${r.status}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1));
}

function findPython() {
  for (const python of [process.env.GOLDPAN_BENCH_PYTHON, join(here, ".venv", "bin", "python"), "python3"]) {
    if (!python || (python.includes("/") && !existsSync(python))) continue;
    if (spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status === 0) return python;
  }
  throw new Error("no Python with torch: run `bash bench/setup.sh`");
}

const checkpoint = opts.checkpoint ? ["--checkpoint", opts.checkpoint] : [];
const build = spawnSync("cargo", ["build", "--release", "-q", "-p", "goldpan-core", "--example", "ntk_bench"], { cwd: root, stdio: "inherit" });
if (build.status !== 0) throw new Error("cargo build of the ntk_bench example failed");
const reps = Math.max(1, Number(opts.reps));
const goldpanRuns = [];
const pytorchRuns = [];
for (let rep = 0; rep < reps; rep++) {
  goldpanRuns.push(run(join(root, "target", "release", "examples", "ntk_bench"),
    ["--cases", opts.cases, "--data", opts.data, "--eigen-precision", opts["eigen-precision"], ...checkpoint], "goldpan",
    // mimalloc keeps freed pages, as it does inside every addon task (bindings/node/src/alloc.rs),
    // so `goldpan ntk` runs the same: otherwise each batch's megabyte-sized temporaries come back
    // as fresh pages the OS must zero (~20 % of the NTK-vector products' set-up).
    { MIMALLOC_PURGE_DELAY: "-1" }));
  pytorchRuns.push(run(findPython(), [join(here, "pytorch", "ntk.py"), "--cases", opts.cases, "--data", opts.data,
    "--threads", threads, "--max-seconds", opts["max-seconds"], ...checkpoint], "pytorch"));
}

/** Per case, the run with the median seconds (failed runs last), and every run's seconds. */
function medianCases(runs) {
  return runs[0].cases.map((first) => {
    const all = runs.map((r) => r.cases.find((c) => c.case === first.case) ?? { error: "missing" });
    const ok = all.filter((c) => c.seconds != null && !c.error).sort((a, b) => a.seconds - b.seconds);
    const pick = ok.length ? ok[Math.floor((ok.length - 1) / 2)] : all[0];
    return { ...pick, runs_s: all.map((c) => c.seconds ?? null) };
  });
}
const goldpan = { ...goldpanRuns[0], cases: medianCases(goldpanRuns) };
const pytorch = { ...pytorchRuns[0], cases: medianCases(pytorchRuns) };

const s = (x) => (x == null ? "–" : `${x.toFixed(1)} s`);
const rows = [];
console.log(`LeNet5 NTK, ${threads} threads (PyTorch ${pytorch.torch}); goldpan eigenvalues in ${opts["eigen-precision"]}, PyTorch's in ${pytorch.eigen_dtype ?? "float64"}${reps > 1 ? `; median of ${reps} alternating runs` : ""}`);
console.log("case           goldpan (kernel + eigen)      PyTorch (jacobian + contraction + eigen)        PyTorch/goldpan  top-1 goldpan / PyTorch");
for (const g of goldpan.cases) {
  const t = pytorch.cases.find((c) => c.case === g.case) ?? {};
  const ratio = t.seconds != null && !t.error ? t.seconds / g.seconds : null;
  rows.push({ case: g.case, goldpan: g, pytorch: t, ratio });
  const gs = g.kernel_s != null ? `${s(g.seconds)} (${s(g.kernel_s)} + ${s(g.eigen_s)})` : `${s(g.seconds)} (${g.products} products)`;
  const ts = t.error ? `error: ${String(t.error).slice(0, 40)}` : t.jacobian_s != null
    ? `${s(t.seconds)} (${s(t.jacobian_s)} + ${s(t.contraction_s)} + ${s(t.eigen_s)})` : `${s(t.seconds)} (${t.products ?? "?"} products)`;
  const top = `${g.top10?.[0]?.toPrecision(7) ?? "–"} / ${t.top10?.[0]?.toPrecision(7) ?? "–"}`;
  console.log(`${g.case.padEnd(14)} ${gs.padEnd(30)} ${ts.padEnd(47)} ${(ratio == null ? "–" : `${ratio.toFixed(2)}×`).padStart(8)}  ${top}`);
}
mkdirSync(join(here, "results"), { recursive: true });
const file = join(here, "results", `ntk-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}Z.json`);
writeFileSync(file, JSON.stringify({ threads, options: opts, rows, goldpan, pytorch }, null, 2));
process.stderr.write(`[bench] wrote ${file}\n`);
