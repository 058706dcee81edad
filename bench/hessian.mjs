// goldpan vs PyTorch: exact Hessian–vector products and top-5 Hessian eigenvalues, one run.
//
// Per model (LeNet5, SHOT's lenet-base and dtn), at one batch of MNIST training images in
// evaluation mode: the time of a loss gradient and of an exact HVP, and their ratio — goldpan's
// (crates/core/examples/hessian_bench.rs: the program engine's forward-over-reverse R-operator)
// beside PyTorch's (bench/pytorch/hessian.py: torch.func.jvp(grad) and PyHessian's double
// backward). Then the top-5 eigenvalues of the loss over the first --eig-n images: goldpan's
// Lanczos beside PyHessian's power iteration with deflation (and PyTorch Lanczos with
// --lanczos). PyTorch's fused weight norm has an inexact double backward and no forward-mode
// rule, so for lenet-base and dtn its exact figures use weight norm written out (see
// hessian.py); both are reported.
//
// Usage: node bench/hessian.mjs [--models lenet5,lenet-base,dtn] [--batch 512] [--reps 3]
//          [--eig-n 1000] [--eig-batch 500] [--threads N] [--data DIR] [--skip-eigen]
//          [--lanczos] [--checkpoint MODEL=PATH]...
// Writes bench/results/hessian-<UTC time>.json; prints a table on stdout, progress on stderr.

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
    models: { type: "string", default: "lenet5,lenet-base,dtn" },
    batch: { type: "string", default: "512" },
    reps: { type: "string", default: "3" },
    "eig-n": { type: "string", default: "1000" },
    "eig-batch": { type: "string", default: "500" },
    threads: { type: "string" },
    data: { type: "string", default: resolve(root, "..", "shared", "data") },
    "skip-eigen": { type: "boolean", default: false },
    lanczos: { type: "boolean", default: false },
    checkpoint: { type: "string", multiple: true, default: [] },
  },
  strict: true,
});
const threads = opts.threads ?? String(os.availableParallelism?.() ?? os.cpus().length);
const env = {
  ...process.env,
  CANDLE_NUM_THREADS: threads,
  RAYON_NUM_THREADS: threads,
  OMP_NUM_THREADS: threads,
  MKL_NUM_THREADS: threads,
};

function run(cmd, args, what) {
  process.stderr.write(`[bench] ${what}: ${cmd} ${args.join(" ")}\n`);
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${what} failed with exit code ${r.status}`);
  const line = r.stdout.trim().split("\n").at(-1);
  return JSON.parse(line);
}

function findPython() {
  for (const python of [process.env.GOLDPAN_BENCH_PYTHON, join(here, ".venv", "bin", "python"), "python3"]) {
    if (!python || (python.includes("/") && !existsSync(python))) continue;
    if (spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status === 0) return python;
  }
  throw new Error("no Python with torch: run `bash bench/setup.sh`");
}

const common = ["--models", opts.models, "--batch", opts.batch, "--reps", opts.reps, "--eig-n", opts["eig-n"],
  "--eig-batch", opts["eig-batch"], "--data", opts.data];
const skip = opts["skip-eigen"] ? ["--skip-eigen"] : [];
const checkpoints = opts.checkpoint.flatMap((c) => ["--checkpoint", c]);

const build = spawnSync("cargo", ["build", "--release", "-q", "-p", "goldpan-core", "--example", "hessian_bench"], {
  cwd: root,
  stdio: "inherit",
});
if (build.status !== 0) throw new Error("cargo build of the hessian_bench example failed");
const goldpan = run(join(root, "target", "release", "examples", "hessian_bench"), [...common, ...skip, ...checkpoints], "goldpan");
const pytorch = run(findPython(), [join(here, "pytorch", "hessian.py"), ...common, "--threads", threads, ...skip,
  ...(opts.lanczos ? ["--lanczos"] : []), ...checkpoints], "pytorch");

const ms = (s) => (s == null ? "–" : (s * 1e3).toFixed(1));
const x = (r) => (r == null ? "–" : `${r.toFixed(2)}×`);
const rows = [];
console.log(`HVP at batch ${opts.batch}, ${threads} threads (PyTorch ${pytorch.torch}, ${pytorch.torch_source ?? ""})`);
console.log("model        goldpan grad  goldpan HVP  HVP/grad | torch grad  torch HVP (way)                  HVP/grad | torch HVP / goldpan HVP");
for (const g of goldpan.cases) {
  const t = pytorch.cases.find((c) => c.model === g.model) ?? {};
  // PyTorch's exact HVP: the fastest way that is exact for this model.
  const ways = g.model === "lenet5"
    ? [["jvp", t.hvp_jvp_s], ["double backward", t.hvp_double_backward_s]]
    : [["jvp, unfused wn", t.hvp_jvp_unfused_wn_s], ["double backward, unfused wn", t.hvp_double_backward_unfused_wn_s]];
  const [way, best] = ways.filter(([, s]) => s != null).sort((a, b) => a[1] - b[1])[0] ?? ["–", null];
  const row = { model: g.model, batch: g.batch, goldpan: g, pytorch: t, torchWay: way, torchHvp: best,
    hvpSpeedup: best != null ? best / g.hvp_s : null };
  rows.push(row);
  console.log(`${g.model.padEnd(12)} ${ms(g.grad_s).padStart(10)} ms ${ms(g.hvp_s).padStart(8)} ms ${x(g.ratio).padStart(9)} |`
    + ` ${ms(t.grad_s).padStart(7)} ms ${ms(best).padStart(8)} ms (${way})`.padEnd(44)
    + ` ${x(best != null && t.grad_s ? best / t.grad_s : null).padStart(8)} | ${x(row.hvpSpeedup)}`);
}
if (!opts["skip-eigen"]) {
  console.log(`\nTop-5 Hessian eigenvalues over ${opts["eig-n"]} images (batches of ${opts["eig-batch"]})`);
  for (const g of goldpan.eigen) {
    console.log(`${g.model}: goldpan Lanczos ${g.seconds.toFixed(1)} s, ${g.hvps} HVPs: ${g.values.map((v) => v.toPrecision(4)).join(", ")}`);
    for (const t of pytorch.eigen.filter((e) => e.model === g.model)) {
      console.log(`${" ".repeat(g.model.length)}  torch ${t.method} ${t.seconds.toFixed(1)} s, ${t.hvps} HVPs: `
        + `${t.values.map((v) => v.toPrecision(4)).join(", ")}  → ${(t.seconds / g.seconds).toFixed(2)}× goldpan's time`);
    }
  }
}
const out = join(here, "results");
mkdirSync(out, { recursive: true });
const file = join(out, `hessian-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}Z.json`);
writeFileSync(file, JSON.stringify({ threads, options: opts, rows, goldpan, pytorch }, null, 2));
process.stderr.write(`[bench] wrote ${file}\n`);
