/** The empirical NTK through the built addon: `goldpan train --track`, `goldpan ntk` (its .npy files,
 * ntk.json and table), the memory budget, and the SDK's ntk calls — on a tiny LeNet5 run over the
 * bundled MNIST. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "@goldpan/cli";
import { ntk, ntkEigen, type NtkReport, type Progress } from "@goldpan/sdk";
import { TINY, TINY_FLAGS, rejection, runCli, tempDir } from "./helpers.js";

const tiny = TINY_FLAGS;
const PROBE = 32;


/** A `.npy` file (version 1.0, little-endian f64, C order) as its shape and values. */
function readNpy(path: string): { shape: number[]; data: Float64Array } {
  const bytes = readFileSync(path);
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from("\x93NUMPY\x01\x00", "latin1"));
  const headerLength = bytes.readUInt16LE(8);
  expect((10 + headerLength) % 64).toBe(0);
  const header = bytes.toString("latin1", 10, 10 + headerLength);
  expect(header).toMatch(/^\{'descr': '<f8', 'fortran_order': False, 'shape': \([\d, ]*\), \} *\n$/);
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1]!.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  expect(bytes.length).toBe(10 + headerLength + 8 * count);
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = bytes.readDoubleLE(10 + headerLength + 8 * i);
  return { shape, data };
}

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));

interface TrackedRun {
  out: string;
  stderr: string;
}

let shared: Promise<TrackedRun> | undefined;
/** A run tracking every measurement every 2 steps, trained once for every test. */
function trackedRun(): Promise<TrackedRun> {
  shared ??= (async () => {
    const out = join(tempDir("ntk"), "run");
    const r = await runCli(["train", ...tiny, "--track", "ntk,swing,speed,eq3", "--every", "2", "--diagnostics-samples", String(PROBE), "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    return { out, stderr: r.stderr };
  })();
  return shared;
}

const checkpointOf = async (): Promise<string> => join((await trackedRun()).out, "last.safetensors");

describe("goldpan train --track", () => {
  it("records the NTK, function speed and swing in metrics.jsonl, and a compact line per event on stderr", async () => {
    const { out, stderr } = await trackedRun();
    const events = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Progress);
    const diagnostics = events.filter((e) => e.kind === "diagnostics");
    expect(diagnostics.map((e) => e.step)).toEqual([0, 2, 4, 6]);
    for (const e of diagnostics) {
      const d = e.diagnostics!;
      expect(Object.keys(d).sort()).toEqual(["eq3", "ntk", "speed", "swing"]);
      const top = d.ntk!.top;
      expect(top).toHaveLength(5);
      for (let i = 1; i < top.length; i++) expect(top[i]!).toBeLessThanOrEqual(top[i - 1]!);
      expect(d.ntk).toMatchObject({ samples: PROBE });
      expect(d.ntk!.trace).toBeGreaterThanOrEqual(top[0]!);
      expect(d.ntk!.minEigenvalue).toBeLessThanOrEqual(top[4]!);
      for (const x of [d.ntk!.pdFraction, d.ntk!.pdFractionDiagonal]) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(1);
      }
      expect(d.speed!.kl).toBeGreaterThan(0);
      expect(d.speed).toMatchObject({ samples: PROBE, error: expect.any(Number) });
      expect(d.swing!.counts).toHaveLength(10);
      expect(d.swing!.counts.reduce((a, b) => a + b, 0)).toBe(PROBE);
      expect(d.swing!.dominantShare).toBe(Math.max(...d.swing!.counts) / PROBE);
    }
    const epoch = events.at(-1)!;
    expect(epoch.kind).toBe("epoch");
    expect(epoch.diagnostics!.swing!.counts.reduce((a, b) => a + b, 0)).toBe(TINY.trainLimit);

    const lines = stderr.split("\n").filter((l) => / eq3: /.test(l));
    expect(lines.map((l) => l.split(" ")[1])).toEqual(["0", "2", "4", "6"]);
    for (const line of lines) {
      expect(line).toMatch(/ \| ntk: λ1 [\d.e+-]+ trace [\d.e+-]+ pd \d+\.\d% \| speed: KL \d\.\d\de-?\d+ error \d+\.\d% \| swing: dominant \d+\.\d%$/);
    }
    expect(stderr).toMatch(/^epoch 1\/1 done: .* \| swing \d+\.\d% on one class \| /m);
  });
});

describe("goldpan ntk", () => {
  it("writes kernel.npy, the eigenvalues and ntk.json, and prints them; Lanczos agrees with the dense spectrum", async () => {
    const checkpoint = await checkpointOf();
    const out = join(tempDir("ntk-out"), "ntk");
    const r = await runCli(["ntk", checkpoint, "--n", "20", "--kernel", "full", "--top-k", "3", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^ntk kernel: /m);
    expect(r.stderr).toMatch(/^ntk eigen: /m);
    expect(r.stderr).toMatch(/^ntk top-k: done, \d+ kernel–vector products/m);

    const kernel = readNpy(join(out, "kernel.npy"));
    expect(kernel.shape).toEqual([200, 200]);
    const eigenvalues = readNpy(join(out, "eigenvalues.npy"));
    expect(eigenvalues.shape).toEqual([200]);
    const top = readNpy(join(out, "top_eigenvalues.npy"));
    expect(top.shape).toEqual([3]);
    const report = JSON.parse(readFileSync(join(out, "ntk.json"), "utf8")) as Omit<NtkReport, "progressEvents">;
    expect(report).toMatchObject({ model: "lenet5", n: 20, classes: 10, kernel: "full", method: "structured", shape: [200, 200], parameters: 44_426 });
    expect([...eigenvalues.data]).toEqual(report.eigenvalues);
    expect([...top.data]).toEqual(report.topK);
    const k = (i: number, j: number): number => kernel.data[i * 200 + j]!;
    let trace = 0;
    for (let i = 0; i < 200; i++) trace += k(i, i);
    expect(rel(trace, report.trace!)).toBeLessThan(1e-12);
    expect(rel(k(3, 17), k(17, 3))).toBeLessThan(1e-4);
    for (let i = 0; i < 3; i++) expect(rel(report.topK![i]!, report.eigenvalues[i]!), `λ${i + 1}`).toBeLessThan(1e-3);

    // The table is ntk.json's numbers (six significant digits).
    const value = (label: string): string => new RegExp(`^  ${label} +(.+)$`, "m").exec(r.stdout)![1]!;
    expect(r.stdout).toMatch(/^NTK of lenet5 over 20 mnist train images \(full kernel, structured method, f32\)\n/);
    expect(value("n")).toBe("20");
    expect(value("classes")).toBe("10");
    expect(value("kernel")).toBe("200 × 200");
    expect(value("parameters")).toBe("44,426");
    expect(rel(Number(value("trace")), report.trace!)).toBeLessThan(1e-5);
    expect(value("eigenvalues")).toMatch(/^200 \(dense\); the largest 10, with the top 3 by Lanczos, \d+ kernel–vector products:$/);
    const rows = [...r.stdout.matchAll(/^ {4}([ \d]\d) +(\S+)(?: +(\S+))?$/gm)];
    expect(rows.map((m) => Number(m[1]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    rows.forEach((m, i) => expect(rel(Number(m[2]), report.eigenvalues[i]!)).toBeLessThan(1e-5));
    expect(rows.filter((m) => m[3] !== undefined).map((m, i) => rel(Number(m[3]), report.topK![i]!) < 1e-5)).toEqual([true, true, true]);
    expect(rel(Number(value("condition")), report.condition!)).toBeLessThan(1e-5);
    expect(rel(Number(value("λmin")), report.minEigenvalue!)).toBeLessThan(1e-5);
    const pd = /^(\d+\.\d)% of the 10×10 blocks, (\d+\.\d)% of the diagonal ones/.exec(value("PD blocks"))!;
    expect(Number(pd[1])).toBeCloseTo(report.pdFraction! * 100, 1);
    expect(Number(pd[2])).toBeCloseTo(report.pdFractionDiagonal! * 100, 1);
    const files = r.stdout.split("  files        ")[1]!.split("\n  time")[0]!.split("\n").map((l) => l.trim());
    expect(files).toEqual([...report.files, join(out, "ntk.json")]);
    expect(value("time")).toMatch(/^\d+\.\ds$/);
  });

  it("refuses a kernel over the memory budget with E_MEMORY, saying what fits", async () => {
    const checkpoint = await checkpointOf();
    const r = await runCli(["ntk", checkpoint, "--n", "20", "--kernel", "full", "--memory-budget", "1kB", "--out", tempDir("ntk-mem")]);
    expect(r.code).toBe(EXIT_CODES.E_MEMORY.exit);
    expect(r.stderr).toMatch(/needs \d+ [kM]B, over the memory budget of 1 kB/);
    expect(r.stderr).toContain("within this budget");
    expect(r.stderr).toContain("(E_MEMORY, exit code 8)");
  });
});

describe("@goldpan/sdk ntk calls", () => {
  it("ntkEigen finds the same top eigenvalues matrix-free as ntk's dense spectrum", async () => {
    const checkpoint = await checkpointOf();
    const dense = await ntk({ checkpoint, n: 10, kernel: "trace" });
    expect(dense.files).toEqual([]);
    expect(dense.eigenvalues).toHaveLength(10);
    const phases: (string | undefined)[] = [];
    const top = await ntkEigen({ checkpoint, n: 10, k: 2 }, { onProgress: (p) => phases.push(p.diagnostics?.phase) });
    expect(top).toMatchObject({ method: "ntvp", shape: [], trace: null, minEigenvalue: null });
    expect(phases).toEqual(["top-k"]);
    for (let i = 0; i < 2; i++) expect(rel(top.topK[i]!, dense.eigenvalues[i]!)).toBeLessThan(1e-3);
  });

  it("rejects an aborted signal with E_CANCELLED and a bad kernel with E_CONFIG naming it", async () => {
    const checkpoint = await checkpointOf();
    expect((await rejection(ntkEigen({ checkpoint, k: 2 }, { signal: AbortSignal.abort() }))).code).toBe("E_CANCELLED");
    const e = await rejection(ntk({ checkpoint, kernel: "diag" as never }));
    expect(e.code).toBe("E_CONFIG");
    expect(e.issues).toEqual([{ path: ["kernel"], message: "must be one of full, blocks, trace" }]);
    expect(e.message).toContain("kernel");
  });
});
