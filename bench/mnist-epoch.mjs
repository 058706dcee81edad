// A full MNIST epoch, end to end: the goldpan CLI vs the same run in PyTorch.
//
// LeNet5, batch 64, SGD lr 0.01 momentum 0.9 weight decay 5e-4, seed 0, shuffled each epoch,
// inputs (x/255 - 0.5)/0.5, then evaluation on the 10,000 test images. Runs, one after the
// other, each a fresh process with the same thread count:
//   goldpan: node packages/cli/bin/goldpan.js train --data D --epochs E --batch-size 64
//            --out <tmp> --json --progress-every 1000000   (RAYON_NUM_THREADS=N)
//   pytorch: <python> bench/pytorch/mnist_epoch.py --data D --epochs E --batch 64 --threads N
//            (OMP_NUM_THREADS=MKL_NUM_THREADS=N)
// and compares three times (pytorch/goldpan > 1: goldpan is faster):
//   process:  wall time of the whole process, start-up, imports and data loading included;
//   run:      in-process, data loading + training + evaluation (goldpan: the result's wallSec,
//             which also covers its checkpoint writes; pytorch: total_sec, which leaves out
//             `import torch` and model/optimizer construction);
//   train:    the training loops only (goldpan: train images / the epoch events' imagesPerSec
//             from metrics.jsonl; pytorch: train_sec).
//
// Usage: node bench/mnist-epoch.mjs [--data DIR] [--epochs N] [--threads N] [--limit N]
//   --data     folder holding mnist/ (default: ../shared/data from the repo root)
//   --threads  default: this machine's cores
//   --limit    first N training images only (goldpan --train-limit, pytorch --limit): smoke tests
// Python: as bench/run.mjs ($GOLDPAN_BENCH_PYTHON, bench/.venv/bin/python, python3,
// /usr/bin/python3, the first that imports torch). Prints progress on stderr, a table and one
// JSON line on stdout, writes bench/results/mnist-epoch-<UTC time>.json; exit 1 if a side failed.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const repo = dirname(here);
const BUSY = 0.1; // as in run.mjs: other processes' CPU share above which a run is flagged
const TIMEOUT_MS = 30 * 60_000;

const { values: opts } = parseArgs({
  options: {
    data: { type: "string", default: join(repo, "..", "shared", "data") },
    epochs: { type: "string", default: "1" },
    threads: { type: "string" },
    limit: { type: "string" },
  },
  strict: true,
});
const int = (name, s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got ${s}`);
  return n;
};
const cores = os.availableParallelism?.() ?? os.cpus().length;
const data = resolve(opts.data);
const epochs = int("epochs", opts.epochs);
const threads = opts.threads === undefined ? cores : int("threads", opts.threads);
const limit = opts.limit === undefined ? null : int("limit", opts.limit);
const batch = 64;

function fail(msg) {
  console.error(msg);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`${msg}\n`);

/** Training images the run sees: the train labels file's count, capped by --limit. */
function trainImages() {
  const raw = join(data, "mnist", "train-labels-idx1-ubyte");
  const buf = existsSync(raw) ? readFileSync(raw) : gunzipSync(readFileSync(`${raw}.gz`));
  const count = buf.readUInt32BE(4);
  return limit === null ? count : Math.min(limit, count);
}

/** The first Python that imports torch (same order as bench/run.mjs), or null. */
function findPython() {
  const candidates = [process.env.GOLDPAN_BENCH_PYTHON, join(here, ".venv", "bin", "python"), "python3", "/usr/bin/python3"];
  for (const python of candidates.filter((p) => p && (!p.includes("/") || existsSync(p)))) {
    const r = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
    if (r.status === 0) return { python, torch: r.stdout.trim() };
  }
  return null;
}

/** CPU seconds used so far by the whole machine and by this process's waited-for children. */
function cpuSec() {
  try {
    const hz = 100; // USER_HZ, 100 on Linux
    const all = readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1, 9).map(Number);
    // /proc/self/stat: fields after the ")" of the name; cutime, cstime are fields 16 and 17.
    const self = readFileSync("/proc/self/stat", "utf8");
    const fields = self.slice(self.lastIndexOf(") ") + 2).split(" ");
    const children = Number(fields[13]) + Number(fields[14]);
    return { machine: (all.reduce((a, b) => a + b, 0) - all[3] - all[4]) / hz, children: children / hz };
  } catch {
    return null;
  }
}

/** Runs a side; returns { wallSec, othersBusy, out: its last stdout line parsed } or { error }. */
function runSide(cmd, args, env) {
  const c0 = cpuSec();
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: TIMEOUT_MS });
  const wallSec = (performance.now() - t0) / 1000;
  const c1 = cpuSec();
  if (r.error) return { error: r.error.message };
  if (r.status !== 0) {
    return { error: `exit ${r.status ?? r.signal}: ${(r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" | ")}` };
  }
  const own = c0 && c1 ? c1.children - c0.children : null;
  const othersBusy = own === null ? null : Math.max(0, (c1.machine - c0.machine - own) / (wallSec * cores));
  try {
    return { wallSec, othersBusy: othersBusy === null ? null : +othersBusy.toFixed(3), out: JSON.parse(r.stdout.trim().split("\n").pop()) };
  } catch {
    return { error: `no JSON line in output: ${r.stdout.trim().split("\n").pop()}` };
  }
}

const n = trainImages();
log(`MNIST from ${data}: ${n} training images, ${epochs} epoch(s), batch ${batch}, threads ${threads}`);
const load = os.loadavg()[0];
const idle0 = cpuSec();
const tIdle = performance.now();
await new Promise((r) => setTimeout(r, 1000));
const idle1 = cpuSec();
const busyAtStart = idle0 && idle1 ? (idle1.machine - idle0.machine) / (cores * (performance.now() - tIdle) / 1000) : null;
if (busyAtStart > BUSY) {
  log(`warning: ${(busyAtStart * 100).toFixed(0)}% of the CPU is busy with other work; timings (PyTorch's most) suffer`);
}

// goldpan
const tmp = mkdtempSync(join(os.tmpdir(), "goldpan-mnist-epoch-"));
const gArgs = [join(repo, "packages", "cli", "bin", "goldpan.js"), "train", "--data", data, "--epochs", String(epochs)];
gArgs.push("--batch-size", String(batch), "--out", join(tmp, "run"), "--json", "--progress-every", "1000000");
if (limit !== null) gArgs.push("--train-limit", String(limit));
log("goldpan ...");
const g = runSide(process.execPath, gArgs, { RAYON_NUM_THREADS: String(threads) });
let goldpan = { error: g.error };
if (!g.error) {
  const events = readFileSync(join(tmp, "run", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const trainSec = events.filter((e) => e.kind === "epoch").reduce((s, e) => s + n / e.imagesPerSec, 0);
  goldpan = {
    process_sec: g.wallSec,
    total_sec: g.out.wallSec,
    train_sec: trainSec,
    images_per_sec: (n * epochs) / trainSec,
    train_loss: g.out.trainLoss,
    train_accuracy: g.out.trainAccuracy,
    test_accuracy: g.out.testAccuracy,
    weights_hash: g.out.weightsHash,
    others_busy: g.othersBusy,
  };
}
rmSync(tmp, { recursive: true, force: true });
log(`goldpan: ${goldpan.error ?? `${goldpan.process_sec.toFixed(2)} s, test accuracy ${goldpan.test_accuracy}`}`);

// PyTorch
const py = findPython();
let pytorch = { error: "no Python that imports torch: run `bash bench/setup.sh`" };
if (py) {
  log(`pytorch ${py.torch} (${py.python}) ...`);
  const pArgs = [join(here, "pytorch", "mnist_epoch.py"), "--data", data, "--epochs", String(epochs)];
  pArgs.push("--batch", String(batch), "--threads", String(threads));
  if (limit !== null) pArgs.push("--limit", String(limit));
  const p = runSide(py.python, pArgs, { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) });
  pytorch = p.error ? { error: p.error } : { process_sec: p.wallSec, ...p.out, others_busy: p.othersBusy, others_busy_train: p.out.others_busy };
}
log(`pytorch: ${pytorch.error ?? `${pytorch.process_sec.toFixed(2)} s, test accuracy ${pytorch.test_accuracy}`}`);

// Table: seconds per side, pytorch/goldpan (> 1: goldpan is faster).
const ratio = (k) => (goldpan[k] && pytorch[k] ? pytorch[k] / goldpan[k] : null);
const busy = Math.max(goldpan.others_busy ?? 0, pytorch.others_busy ?? 0);
const f = (x, d = 2) => (x == null ? "-" : x.toFixed(d));
const rows = [
  ["time (s)", "goldpan", "pytorch", "pytorch/goldpan"],
  ...[["process", "process_sec"], ["run (load+train+eval)", "total_sec"], ["train loop", "train_sec"]].map(([label, k]) => [
    label, f(goldpan[k]), f(pytorch[k]), ratio(k) == null ? "-" : `${f(ratio(k))}x${busy > BUSY ? " (busy)" : ""}`,
  ]),
  ["test accuracy", f(goldpan.test_accuracy, 4), f(pytorch.test_accuracy, 4), ""],
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  "));

const date = new Date().toISOString();
const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: here, encoding: "utf8" });
const result = {
  case: "mnist-epoch", model: "lenet5", batch, epochs, threads, train_images: n, limit,
  goldpan, pytorch, ratio_process: ratio("process_sec"), ratio_total: ratio("total_sec"), ratio_train: ratio("train_sec"),
  others_busy: busy,
};
console.log(JSON.stringify(result));
if (busy > BUSY) log("(busy): other processes took over 10% of the CPU during a run; rerun on a quiet machine.");

const report = {
  date,
  commit: git.status === 0 ? git.stdout.trim() : null,
  machine: { cpu: os.cpus()[0]?.model ?? null, cores, platform: `${os.platform()}-${os.arch()}`, node: process.version, load_avg_at_start: load, busy_fraction_at_start: busyAtStart },
  python: py?.python ?? null,
  torch: py?.torch ?? null,
  data,
  ...result,
};
mkdirSync(join(here, "results"), { recursive: true });
const outFile = join(here, "results", `mnist-epoch-${date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
log(`wrote ${outFile}`);
process.exitCode = goldpan.error || pytorch.error ? 1 : 0;
