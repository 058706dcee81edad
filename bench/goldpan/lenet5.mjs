// Model throughput in goldpan, the measured side of `bench/run.mjs` (the file keeps its name;
// --model picks any registered model, default lenet5).
//
// Calls the SDK's `benchmark({ model, batchSize, mode, iters, warmup, seed })`, which times
// `iters` steps after `warmup` untimed ones on one random batch B x (the model's input shape)
// with random labels 0..9:
//   train: forward + cross-entropy + backward + SGD step; infer: forward only.
//
// Usage: node bench/goldpan/lenet5.mjs --mode train|infer --batch N [--model NAME]
//          [--iters N] [--warmup N] [--seed N] [--threads N]
// --threads sets RAYON_NUM_THREADS (candle's CPU thread count) before the addon loads.
//
// Prints ONE JSON line on stdout:
//   {"impl":"goldpan","goldpan":version,"model","params","mode","batch","threads","iters",
//    "wall_sec","images_per_sec","others_busy"}; params is the registry's parameter count
//    (`listModels()`, null if unavailable); others_busy is the share of the machine's CPU
//    that other processes used during the call.
// On failure: the error (with its `code`) on stderr and exit code 1.

import os from "node:os";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "lenet5" },
    mode: { type: "string" },
    batch: { type: "string" },
    iters: { type: "string", default: "50" },
    warmup: { type: "string", default: "5" },
    seed: { type: "string", default: "0" },
    threads: { type: "string" },
  },
  strict: true,
});

function int(name, min) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${values[name]}`);
    process.exit(2);
  }
  return n;
}

if (values.mode !== "train" && values.mode !== "infer") {
  console.error(`--mode must be train or infer, got ${values.mode}`);
  process.exit(2);
}
const mode = values.mode;
const model = values.model;
const batchSize = int("batch", 1);
const iters = int("iters", 1);
const warmup = int("warmup", 0);
const seed = int("seed", 0);
if (values.threads !== undefined) {
  // Must happen before the addon's first parallel op builds rayon's pool.
  process.env.RAYON_NUM_THREADS = String(int("threads", 1));
}
const threads =
  Number(process.env.RAYON_NUM_THREADS) || (os.availableParallelism?.() ?? os.cpus().length);

let sdk;
try {
  sdk = await import("@goldpan/sdk");
} catch (err) {
  console.error(
    `cannot load @goldpan/sdk (${err.code ?? err.message}): build it first ` +
      "(npm install && npm run build at the repo root)",
  );
  process.exit(1);
}

/** CPU seconds all processes have used so far, from the per-core counters. */
function machineCpuSec() {
  let ms = 0;
  for (const { times: t } of os.cpus()) ms += t.user + t.nice + t.sys + t.irq;
  return ms / 1000;
}

try {
  const m0 = machineCpuSec();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await sdk.benchmark({ model, batchSize, mode, iters, warmup, seed });
  const wall = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const own = (c1.user + c1.system) / 1e6;
  // Share of the machine's CPU that other processes used during the call (setup and warmup
  // included, which the timed figure is not).
  const others = Math.max(0, (machineCpuSec() - m0 - own) / (wall * os.cpus().length));
  let version = null;
  try {
    version = typeof sdk.version === "function" ? sdk.version() : null;
  } catch {
    // version is informative only
  }
  let params = null;
  try {
    params = sdk.listModels().find((m) => m.name === r.model)?.paramCount ?? null;
  } catch {
    // informative only
  }
  console.log(
    JSON.stringify({
      impl: "goldpan",
      goldpan: version,
      model: r.model,
      params,
      mode: r.mode,
      batch: r.batchSize,
      threads,
      iters: r.iters,
      wall_sec: r.wallSec,
      images_per_sec: r.imagesPerSec,
      others_busy: Number(others.toFixed(3)),
    }),
  );
} catch (err) {
  console.error(`goldpan benchmark failed: ${err.code ? `[${err.code}] ` : ""}${err.message}`);
  process.exit(1);
}
