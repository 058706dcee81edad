// goldpan vs PyTorch: images/s of LeNet5 and of SHOT's digit networks (lenet-base, dtn) on this
// machine, in one run.
//
// For each case, each side (goldpan: bench/goldpan/lenet5.mjs, PyTorch: bench/pytorch/lenet5.py,
// both child processes) first runs a short probe whose throughput sizes its iteration count to
// ~--seconds of timed work; then each repetition runs goldpan and then PyTorch with the same
// model, batch, warmup and thread count. The median images/s over the repetitions is reported,
// with the ratio goldpan / PyTorch (> 1: goldpan is faster). A side that fails a case (e.g.
// goldpan's E_CONFIG "unknown model" for a model its registry lacks) is reported as an error in
// that row; the other side is still measured.
//
// Usage: node bench/run.mjs [--reps N] [--seconds S] [--threads N] [--only goldpan|pytorch]
//          [--cases train-b64,train-b512,infer-b512,train-lenet-base-b64,train-dtn-b64]
//   --seconds  timed seconds per run (default 1.5; the whole bench then takes ~2–3 minutes).
//   --threads  threads for both sides (default: this machine's cores): PyTorch gets
//              torch.set_num_threads(N) and OMP_NUM_THREADS=MKL_NUM_THREADS=N, goldpan gets
//              RAYON_NUM_THREADS=N.
// Python: $GOLDPAN_BENCH_PYTHON, else bench/.venv/bin/python, python3, /usr/bin/python3,
// the first that can import torch (see `bash bench/setup.sh`).
//
// Prints progress on stderr; a table, then one JSON line per case, on stdout; and writes
// bench/results/<UTC time>.json. Exit code 1 if any run failed.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));

// model: goldpan's registry name (`goldpan models`), also `--model` of pytorch/lenet5.py.
// probe: iterations of the sizing run (after `warmup`), a fraction of a second at PyTorch's
// CPU speed on 2 cores (lenet5: ~19k img/s train b64, ~26k train b512, ~50k infer b512;
// lenet-base train b64: a few thousand; dtn train b64: several hundred).
const CASES = [
  { name: "train-b64", model: "lenet5", mode: "train", batch: 64, probe: 40, warmup: 10 },
  { name: "train-b512", model: "lenet5", mode: "train", batch: 512, probe: 8, warmup: 3 },
  { name: "infer-b512", model: "lenet5", mode: "infer", batch: 512, probe: 15, warmup: 5 },
  { name: "train-lenet-base-b64", model: "lenet-base", mode: "train", batch: 64, probe: 10, warmup: 5 },
  { name: "train-dtn-b64", model: "dtn", mode: "train", batch: 64, probe: 3, warmup: 3 },
];
const SEED = 0;
/** Share of the CPU taken by other processes above which a run is flagged as disturbed. */
const BUSY = 0.1;
const MIN_ITERS = 5;
const RUN_TIMEOUT_MS = 300_000;

const { values: opts } = parseArgs({
  options: {
    reps: { type: "string", default: "3" },
    seconds: { type: "string", default: "1.5" },
    threads: { type: "string" },
    cases: { type: "string" },
    only: { type: "string" },
  },
  strict: true,
});

const cores = os.availableParallelism?.() ?? os.cpus().length;
const reps = positiveInt("reps", opts.reps);
const threads = opts.threads === undefined ? cores : positiveInt("threads", opts.threads);
const seconds = Number(opts.seconds);
if (!(seconds > 0)) fail(`--seconds must be > 0, got ${opts.seconds}`);
if (opts.only !== undefined && opts.only !== "goldpan" && opts.only !== "pytorch") {
  fail(`--only must be goldpan or pytorch, got ${opts.only}`);
}
const wanted = opts.cases?.split(",").map((s) => s.trim()).filter(Boolean);
const cases = CASES.filter((c) => !wanted || wanted.includes(c.name));
if (wanted && cases.length !== wanted.length) {
  fail(`--cases: unknown case in ${opts.cases}; known: ${CASES.map((c) => c.name).join(",")}`);
}

function positiveInt(name, s) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got ${s}`);
  return n;
}

function fail(msg) {
  console.error(msg);
  process.exit(2);
}

function pct(x) {
  return `${(x * 100).toFixed(0)}%`;
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

/** The first Python that imports torch, with its version, or null. */
function findPython() {
  const candidates = [
    process.env.GOLDPAN_BENCH_PYTHON,
    join(here, ".venv", "bin", "python"),
    "python3",
    "/usr/bin/python3",
  ].filter((p) => p && (!p.includes("/") || existsSync(p)));
  for (const python of candidates) {
    const r = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], {
      encoding: "utf8",
    });
    if (r.status === 0) return { python, torch: r.stdout.trim() };
  }
  return null;
}

/** Fraction of all cores busy over the next `ms` milliseconds (other processes' work). */
async function busyFraction(ms) {
  const sum = () =>
    os.cpus().reduce(
      (a, c) => {
        const t = c.times;
        a.idle += t.idle;
        a.total += t.user + t.nice + t.sys + t.idle + t.irq;
        return a;
      },
      { idle: 0, total: 0 },
    );
  const a = sum();
  await new Promise((r) => setTimeout(r, ms));
  const b = sum();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/** Runs one measurement; returns its parsed JSON line or { error }. */
function runOne(cmd, args, env) {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: RUN_TIMEOUT_MS,
  });
  if (r.error) return { error: r.error.message };
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" | ");
    return { error: `exit ${r.status ?? r.signal}: ${why}` };
  }
  const line = r.stdout.trim().split("\n").pop();
  try {
    return JSON.parse(line);
  } catch {
    return { error: `no JSON line in output: ${line}` };
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median images/s over the runs that worked, per-run figures (null: failed), first error. */
function summarize(runs) {
  const ok = runs.filter((r) => !r.error);
  const error = runs.find((r) => r.error)?.error;
  const perRun = runs.map((r) => (r.error ? null : r.images_per_sec));
  if (ok.length === 0) return { images_per_sec: null, runs: perRun, error };
  const { impl, wall_sec, images_per_sec, others_busy, ...meta } = ok[0];
  return {
    ...meta,
    images_per_sec: median(ok.map((r) => r.images_per_sec)),
    runs: perRun,
    others_busy: Math.max(...ok.map((r) => r.others_busy ?? 0)),
    ...(error ? { error } : {}),
  };
}

// The two sides: how to start one run of each.
const sides = [];
if (opts.only !== "pytorch") {
  try {
    import.meta.resolve("@goldpan/sdk");
    sides.push({
      name: "goldpan",
      cmd: process.execPath,
      script: join(here, "goldpan", "lenet5.mjs"),
      env: { RAYON_NUM_THREADS: String(threads) },
    });
  } catch {
    log(
      "@goldpan/sdk cannot be resolved from bench/: run `npm install && npm run build` at the " +
        "repo root. Running the PyTorch side only.",
    );
  }
}
const py = opts.only === "goldpan" ? null : findPython();
if (opts.only !== "goldpan") {
  if (!py) {
    log(
      "PyTorch is not available (none of bench/.venv/bin/python, python3, /usr/bin/python3 " +
        "imports torch): run `bash bench/setup.sh`. Running the goldpan side only.",
    );
  } else {
    log(`PyTorch ${py.torch} from ${py.python}`);
    sides.push({
      name: "pytorch",
      cmd: py.python,
      script: join(here, "pytorch", "lenet5.py"),
      env: { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
    });
  }
}
if (sides.length === 0) fail("nothing to run");

const load = os.loadavg()[0];
const busy = await busyFraction(1000);
if (busy > BUSY) {
  log(
    `warning: ${pct(busy)} of the CPU is busy with other work (1-min load ` +
      `${load.toFixed(2)} on ${cores} cores); it skews both sides, multi-threaded PyTorch ` +
      "most (its OpenMP threads wait on each other): results are not comparable to a quiet run.",
  );
}
log(`threads ${threads}, ${reps} repetitions of ~${seconds} s, seed ${SEED}`);

const results = [];
for (const c of cases) {
  const base = ["--model", c.model, "--mode", c.mode, "--batch", String(c.batch)];
  base.push("--warmup", String(c.warmup));
  base.push("--seed", String(SEED), "--threads", String(threads));
  const run = (side, iters) =>
    runOne(side.cmd, [side.script, ...base, "--iters", String(iters)], side.env);

  // Size each side's iterations from a probe.
  const plan = sides.map((side) => {
    const probe = run(side, c.probe);
    if (probe.error) {
      log(`${c.name} ${side.name} probe failed: ${probe.error}`);
      return { side, iters: 0, runs: [probe] };
    }
    const iters = Math.max(MIN_ITERS, Math.round((seconds * probe.images_per_sec) / c.batch));
    log(`${c.name} ${side.name} probe: ${probe.images_per_sec.toFixed(0)} img/s -> ${iters} iters`);
    return { side, iters, runs: [] };
  });
  for (let rep = 1; rep <= reps; rep++) {
    for (const p of plan) {
      if (p.iters === 0) continue;
      const r = run(p.side, p.iters);
      p.runs.push(r);
      const note = r.others_busy > BUSY ? ` (other processes took ${pct(r.others_busy)} of the CPU)` : "";
      log(`${c.name} rep ${rep} ${p.side.name}: ${r.error ?? `${r.images_per_sec.toFixed(0)} img/s${note}`}`);
    }
  }
  const by = Object.fromEntries(plan.map((p) => [p.side.name, summarize(p.runs)]));
  const goldpan = by.goldpan ?? null;
  const pytorch = by.pytorch ?? null;
  const ratio =
    goldpan?.images_per_sec && pytorch?.images_per_sec
      ? goldpan.images_per_sec / pytorch.images_per_sec
      : null;
  // Both sides must time the same network: compare their parameter counts when both report one.
  const paramsMatch =
    goldpan?.params != null && pytorch?.params != null ? goldpan.params === pytorch.params : null;
  if (paramsMatch === false) {
    log(
      `warning: ${c.name}: goldpan's ${c.model} has ${goldpan.params} parameters, PyTorch's ` +
        `${pytorch.params}: the two sides do not time the same network.`,
    );
  }
  results.push({
    case: c.name,
    model: c.model,
    mode: c.mode,
    batch: c.batch,
    warmup: c.warmup,
    threads,
    reps,
    goldpan,
    pytorch,
    ratio,
    params_match: paramsMatch,
    // Most CPU share other processes took during any run of the case; over BUSY the figures
    // (PyTorch's above all) are not those of a quiet machine.
    others_busy: Math.max(goldpan?.others_busy ?? 0, pytorch?.others_busy ?? 0),
  });
}

// Table. "error": the side ran and failed (details below the table); "-": not run.
const fmt = (side) =>
  side?.images_per_sec != null ? side.images_per_sec.toFixed(0) : side?.error ? "error" : "-";
const rows = [
  ["case", "goldpan img/s", "pytorch img/s", "goldpan/pytorch"],
  ...results.map((r) => [
    r.case,
    fmt(r.goldpan),
    fmt(r.pytorch),
    r.ratio == null ? "-" : `${r.ratio.toFixed(2)}x${r.others_busy > BUSY ? " (busy)" : ""}`,
  ]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const row of rows) {
  const cells = row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])));
  console.log(cells.join("  "));
}
for (const r of results) console.log(JSON.stringify(r));
for (const r of results) {
  for (const name of ["goldpan", "pytorch"]) {
    if (r[name]?.error) log(`${r.case} ${name} error: ${r[name].error}`);
  }
}
if (results.some((r) => r.others_busy > BUSY)) {
  log(
    "(busy): other processes used the CPU during those runs; PyTorch's OpenMP threads suffer " +
      "far more from that than goldpan's, so the ratio overstates goldpan. Rerun on a quiet machine.",
  );
}

const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: here, encoding: "utf8" });
const report = {
  date: new Date().toISOString(),
  commit: git.status === 0 ? git.stdout.trim() : null,
  machine: {
    cpu: os.cpus()[0]?.model ?? null,
    cores,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()}-${os.arch()}`,
    node: process.version,
    load_avg_at_start: load,
    busy_fraction_at_start: busy,
  },
  python: py?.python ?? null,
  torch: py?.torch ?? null,
  threads,
  reps,
  seconds_per_run: seconds,
  results,
};
const outDir = join(here, "results");
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, `${report.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
log(`wrote ${outFile}`);

const failed = results.some((r) => r.goldpan?.error || r.pytorch?.error);
process.exitCode = failed ? 1 : 0;
