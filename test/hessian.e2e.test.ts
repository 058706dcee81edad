/** Hessian analyses and training diagnostics through the built addon: `goldpan train --diagnostics`,
 * `goldpan hessian`, and the SDK's hessian calls — on a tiny LeNet5 run over the bundled MNIST. */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type * as Binding from "@goldpan/binding";
import { EXIT_CODES } from "@goldpan/cli";
import { hessian, hessianEigen, hvp, type Progress } from "@goldpan/sdk";
import { TINY, TINY_FLAGS, rejection, runCli, tempDir } from "./helpers.js";

const tiny = TINY_FLAGS;
/** The Hessian over few samples: quick, and the same set for the CLI and the SDK. */
const SAMPLES = { samples: 64, batchSize: 32 } as const;
const LENET5_PARAMETERS = 44_426;


interface DiagnosedRun {
  out: string;
  weightsHash: string;
  stderr: string;
}

let shared: Promise<DiagnosedRun> | undefined;
/** A run with diagnostics every 2 steps, trained once for every test. */
function diagnosedRun(): Promise<DiagnosedRun> {
  shared ??= (async () => {
    const out = join(tempDir("hessian"), "run");
    const r = await runCli(["train", ...tiny, "--diagnostics", "eq3", "--every", "2", "--diagnostics-samples", "64", "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return { out, weightsHash: (JSON.parse(r.stdout) as { weightsHash: string }).weightsHash, stderr: r.stderr };
  })();
  return shared;
}

const checkpointOf = async (): Promise<string> => join((await diagnosedRun()).out, "last.safetensors");

describe("training diagnostics", () => {
  it("go to metrics.jsonl at steps 0, 2, 4, … (before the step's update) with every Eq. 3 number finite", async () => {
    const { out } = await diagnosedRun();
    const events = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Progress);
    const diagnostics = events.filter((e) => e.kind === "diagnostics");
    const steps = TINY.trainLimit / TINY.batchSize;
    expect(diagnostics.map((e) => e.step)).toEqual(Array.from({ length: steps / 2 }, (_, i) => 2 * i));
    expect(events[0]).toMatchObject({ kind: "diagnostics", step: 0 });
    expect(events.at(-1)!.kind).toBe("epoch");
    for (const e of diagnostics) {
      const eq3 = e.diagnostics!.eq3!;
      expect(Object.keys(eq3).sort()).toEqual(
        ["alpha", "cosAlongGradient", "cosRandom", "curvature", "descent", "gradNorm", "hgNorm", "loss", "lossChange", "minibatchCos", "minibatchNoise"].sort(),
      );
      for (const [k, v] of Object.entries(eq3)) expect(Number.isFinite(v), `${k} at step ${e.step}`).toBe(true);
      expect(eq3.alpha).toBe(0.01); // the learning rate
      expect(eq3.gradNorm).toBeGreaterThan(0);
    }
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
    expect(config).toMatchObject({ diagnostics: ["eq3"], diagnosticsEvery: 2, diagnosticsSamples: 64 });
  });

  it("print a compact line per event on stderr and leave the weights as a run without them", async () => {
    const { stderr, weightsHash } = await diagnosedRun();
    const lines = stderr.split("\n").filter((l) => l.includes(" eq3: "));
    expect(lines.map((l) => l.split(" ")[1])).toEqual(["0", "2", "4", "6"]);
    for (const line of lines) {
      expect(line).toMatch(/^step \d+ eq3: ‖g‖ \d+\.\d{4} gᵀHg\/‖g‖² -?\d+\.\d{4} cos along g -?\d\.\d{4} vs random -?\d\.\d{4} minibatch cos -?\d\.\d{4}$/);
    }
    const plain = await runCli(["train", ...tiny, "--out", join(tempDir("hessian-plain"), "run"), "--json"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect((JSON.parse(plain.stdout) as { weightsHash: string }).weightsHash).toBe(weightsHash);
  });
});

describe("goldpan hessian", () => {
  it("prints eigenvalues, trace, loss, ‖g‖, products and time, and writes the report beside the checkpoint", async () => {
    const { out } = await diagnosedRun();
    const checkpoint = join(out, "last.safetensors");
    const r = await runCli(["hessian", checkpoint, "--top-k", "2", "--trace", "--samples", "64", "--batch-size", "32"]);
    expect(r.code, r.stderr).toBe(0);
    const path = join(out, "hessian.json");
    expect(r.stdout).toMatch(/^Hessian of lenet5 \(44,426 parameters\) over 64 mnist train images \(true labels, eval mode, f32\)\n/);
    expect(r.stdout).toMatch(/^ {2}loss \d+\.\d+ {2}‖g‖ \d/m);
    expect(r.stdout).toMatch(/^ {2}top 2 eigenvalues \(Lanczos, \d+ products, (not )?converged\):\n +# +eigenvalue +residual\n +1 +-?[\d.e+-]+ +[\d.]+e[+-]\d+\n +2 /m);
    expect(r.stdout).toMatch(/^ {2}trace -?[\d.e+-]+ ± [\d.e+-]+ \(Hutchinson, \d+ samples\)$/m);
    expect(r.stdout).toMatch(/^ {2}\d+ Hessian–vector products in \d+\.\ds$/m);
    expect(r.stdout).toContain(`  report: ${path}\n`);
    // Progress on stderr: products and phase.
    expect(r.stderr).toMatch(/^hessian eigen: 1 Hessian–vector products, /m);
    expect(r.stderr).toMatch(/^hessian trace: \d+ Hessian–vector products, /m);

    const report = JSON.parse(readFileSync(path, "utf8")) as {
      eigen: { values: number[]; residuals: number[]; products: number };
      trace: { estimate: number; stdError: number; samples: number };
      density: null;
      parameters: number;
      samples: number;
      products: number;
      config: Record<string, unknown>;
    };
    expect(report).toMatchObject({ parameters: LENET5_PARAMETERS, samples: 64, density: null, config: { checkpoint, topK: 2, trace: true, samples: 64, batchSize: 32 } });
    const [first, second] = report.eigen.values;
    expect(report.eigen.values).toHaveLength(2);
    expect(first).toBeGreaterThanOrEqual(second!);
    for (const x of [...report.eigen.values, ...report.eigen.residuals, report.trace.estimate, report.trace.stdError]) expect(Number.isFinite(x)).toBe(true);
    expect(report.products).toBeGreaterThan(0);
    expect(report.products).toBe(report.eigen.products + report.trace.samples);

    // --json: the report on stdout, with where it was written.
    const json = await runCli(["hessian", checkpoint, "--top-k", "0", "--samples", "16", "--out", join(tempDir("hessian-out"), "h.json"), "--json"]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ eigen: null, trace: null, products: 0, samples: 16, report: expect.stringMatching(/h\.json$/) });
  });

  it("exits 2 on a bad value, naming the flag; the addon names the field past the schema", async () => {
    const checkpoint = await checkpointOf();
    const r = await runCli(["hessian", checkpoint, "--samples", "0", "--mode", "infer"]);
    expect(r.code).toBe(EXIT_CODES.E_CONFIG.exit);
    expect(r.stderr).toContain("  --samples: must be ≥ 1\n");
    expect(r.stderr).toContain("  --mode: must be one of eval, train\n");
    expect(r.stderr).toContain("(E_CONFIG, exit code 2)");

    const binding = createRequire(import.meta.url)("@goldpan/binding") as typeof Binding;
    const direct = (config: Record<string, unknown>) =>
      binding.hessianAnalyse(config).then(
        () => expect.unreachable(),
        (e: unknown) => e as Error & { code: string },
      );
    expect(await direct({ checkpoint, topk: 2 })).toMatchObject({ code: "E_CONFIG", message: "invalid config: topk: unknown field" });
    expect(await direct({ checkpoint, samples: -1 })).toMatchObject({ code: "E_CONFIG", message: expect.stringMatching(/^invalid config: samples: /) });
    expect(await direct({ checkpoint, precision: "f16" })).toMatchObject({ code: "E_CONFIG", message: expect.stringMatching(/^invalid config: precision: /) });
  });
});

describe("@goldpan/sdk hessian calls", () => {
  it("hvp: one exact product with the loss and gradient; a vector of the wrong length is E_SHAPE", async () => {
    const checkpoint = await checkpointOf();
    const v = new Float64Array(LENET5_PARAMETERS);
    v[0] = 1;
    const r = await hvp({ checkpoint, ...SAMPLES }, v);
    expect(r.gradient).toBeInstanceOf(Float64Array);
    expect(r.hv).toHaveLength(LENET5_PARAMETERS);
    expect(r.gradient).toHaveLength(LENET5_PARAMETERS);
    expect(r.hv.every(Number.isFinite)).toBe(true);
    // The same loss and gradient as the analysis over the same samples.
    const report = await hessian({ checkpoint, ...SAMPLES });
    expect(r.loss).toBe(report.loss);
    expect(Math.hypot(...r.gradient)).toBeCloseTo(report.gradNorm, 10);

    const err = await rejection(hvp({ checkpoint, ...SAMPLES }, [1, 2, 3]));
    expect(err.code).toBe("E_SHAPE");
    expect(err.message).toContain(`${LENET5_PARAMETERS} parameters`);
  });

  it("hessianEigen stops with E_CANCELLED: an aborted signal before it starts, an abort within one product", async () => {
    const checkpoint = await checkpointOf();
    expect((await rejection(hessianEigen({ checkpoint, k: 2 }, { signal: AbortSignal.abort() }))).code).toBe("E_CANCELLED");

    const ac = new AbortController();
    const events: Progress[] = [];
    const err = await rejection(
      hessianEigen({ checkpoint, k: 2, ...SAMPLES }, {
        signal: ac.signal,
        onProgress: (p) => {
          events.push(p);
          ac.abort();
        },
      }),
    );
    expect(err.code).toBe("E_CANCELLED");
    expect(events[0]).toMatchObject({ kind: "analysis", step: 1, diagnostics: { phase: "eigen" } });
    // Stopped within a product or two of the abort (the whole analysis takes dozens).
    expect(events.length).toBeLessThan(10);
  });
});
