import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Progress } from "@goldpan/sdk";
import { analysisReporter, formatAnalysis, formatDiagnostics, formatEpoch, formatNtkAnalysis, formatStep, progressReporter } from "./progress.js";

const step: Progress = {
  kind: "step",
  epoch: 1,
  epochs: 2,
  step: 50,
  stepInEpoch: 50,
  stepsPerEpoch: 79,
  loss: 0.41234,
  accuracy: 0.875,
  imagesPerSec: 4321.4,
  elapsedSec: 0.8,
};

describe("progress", () => {
  it("formats one line per event", () => {
    expect(formatStep(step)).toBe("epoch 1/2 step 50/79 loss 0.4123 acc 87.5% 4321 img/s");
    expect(formatEpoch({ ...step, kind: "epoch", testLoss: 0.1, testAccuracy: 0.97, checkpoint: "r/epoch-1.safetensors" })).toBe(
      "epoch 1/2 done: train loss 0.4123 acc 87.5% | test loss 0.1000 acc 97.0% | 0.8s | r/epoch-1.safetensors",
    );
  });

  it("leaves out what an adaptation does not compute (NaN) and names what it evaluates on", () => {
    const adapt: Progress = { ...step, accuracy: Number.NaN };
    expect(formatStep(adapt)).toBe("epoch 1/2 step 50/79 loss 0.4123 4321 img/s");
    const epoch: Progress = { ...step, kind: "epoch", loss: Number.NaN, accuracy: Number.NaN, testLoss: 0.5, testAccuracy: 0.812 };
    expect(formatEpoch(epoch, { evaluation: "target test" })).toBe("epoch 1/2 done: target test loss 0.5000 acc 81.2% | 0.8s");
    const out = new PassThrough();
    const r = progressReporter(out, { evaluation: "held-out" });
    r.update({ ...step, kind: "epoch", testLoss: 0.1, testAccuracy: 0.9 });
    expect(String(out.read())).toBe("epoch 1/2 done: train loss 0.4123 acc 87.5% | held-out loss 0.1000 acc 90.0% | 0.8s\n");
  });

  it("writes plain lines when the stream is not a TTY", () => {
    const out = new PassThrough();
    const r = progressReporter(out);
    r.update(step);
    r.stop();
    expect(String(out.read())).toBe(`${formatStep(step)}\n`);
  });
});

const diagnostics: Progress = {
  ...step,
  kind: "diagnostics",
  step: 4,
  loss: Number.NaN,
  accuracy: Number.NaN,
  imagesPerSec: 0,
  diagnostics: {
    eq3: {
      loss: 2.3,
      gradNorm: 0.81234,
      hgNorm: 3.1,
      curvature: 4.56789,
      alpha: 0.01,
      descent: 0.6,
      lossChange: -0.006,
      cosAlongGradient: 0.99812,
      cosRandom: 0.99951,
      minibatchCos: 0.75123,
      minibatchNoise: 0.5,
    },
  },
};

const analysis = (n: number, phase: "eigen" | "trace"): Progress => ({
  ...step,
  kind: "analysis",
  step: n,
  loss: Number.NaN,
  elapsedSec: n / 10,
  diagnostics: { phase },
});

describe("progress of diagnostics and analyses", () => {
  it("puts a diagnostics event on a line of its own: step, ‖g‖, curvature, cosines", () => {
    expect(formatDiagnostics(diagnostics)).toBe(
      "step 4 eq3: ‖g‖ 0.8123 gᵀHg/‖g‖² 4.5679 cos along g 0.9981 vs random 0.9995 minibatch cos 0.7512",
    );
    const out = new PassThrough();
    const r = progressReporter(out);
    r.update(diagnostics);
    r.update(step);
    expect(String(out.read())).toBe(`${formatDiagnostics(diagnostics)}\n${formatStep(step)}\n`);
  });

  it("puts every tracked measurement on the same line: ntk λ1 / trace / pd, speed KL and error, swing", () => {
    const d = diagnostics.diagnostics!;
    const tracked: Progress = {
      ...diagnostics,
      diagnostics: {
        ...d,
        ntk: { samples: 32, top: [65.2391, 12, 3, 2, 1], trace: 635.712, minEigenvalue: 0.01, pdFraction: 0.98765, pdFractionDiagonal: 1 },
        swing: { samples: 32, counts: [31, 1], dominantShare: 0.96875 },
        speed: { kl: 1.3251e-7, error: 0.9375, samples: 32 },
      },
    };
    expect(formatDiagnostics(tracked)).toBe(
      `${formatDiagnostics(diagnostics)} | ntk: λ1 65.24 trace 635.7 pd 98.8% | speed: KL 1.33e-7 error 93.8% | swing: dominant 96.9%`,
    );
    const { eq3: _eq3, ...rest } = tracked.diagnostics!;
    expect(formatDiagnostics({ ...tracked, diagnostics: { ntk: rest.ntk! } })).toBe("step 4 ntk: λ1 65.24 trace 635.7 pd 98.8%");
    expect(formatEpoch({ ...step, kind: "epoch", testLoss: 0.1, testAccuracy: 0.97, diagnostics: { swing: { samples: 512, counts: [], dominantShare: 0.801 } } })).toBe(
      "epoch 1/2 done: train loss 0.4123 acc 87.5% | test loss 0.1000 acc 97.0% | 0.8s | swing 80.1% on one class",
    );
  });

  it("names an NTK analysis' phases", () => {
    const at = (phase: "kernel" | "eigen" | "top-k", n = 0): Progress => ({ ...analysis(n, "eigen"), elapsedSec: 0.5, diagnostics: { phase } });
    expect(formatNtkAnalysis(at("kernel"))).toBe("ntk kernel: forming it, 0.5s");
    expect(formatNtkAnalysis(at("eigen"))).toBe("ntk eigen: eigendecomposition, 0.5s");
    expect(formatNtkAnalysis(at("top-k", 14))).toBe("ntk top-k: done, 14 kernel–vector products, 0.5s");
    const out = new PassThrough();
    const r = analysisReporter(out, formatNtkAnalysis);
    for (const phase of ["kernel", "eigen", "top-k"] as const) r.update(at(phase, phase === "top-k" ? 14 : 0));
    r.stop();
    expect(String(out.read()).trim().split("\n").map((l) => l.split(":")[0])).toEqual(["ntk kernel", "ntk eigen", "ntk top-k"]);
  });

  it("reports an analysis' products and phase, a line per phase and every 10 products off a terminal", () => {
    expect(formatAnalysis(analysis(12, "trace"))).toBe("hessian trace: 12 Hessian–vector products, 1.2s");
    const out = new PassThrough();
    const r = analysisReporter(out);
    for (let n = 1; n <= 23; n++) r.update(analysis(n, n <= 13 ? "eigen" : "trace"));
    r.stop();
    expect(String(out.read()).trim().split("\n").map((l) => l.split(":")[0] + ":" + l.split(":")[1]!.split(" ")[1])).toEqual([
      "hessian eigen:1",
      "hessian eigen:10",
      "hessian trace:14",
      "hessian trace:20",
    ]);
  });

  it("redraws an analysis line in place on a terminal", () => {
    const out = Object.assign(new PassThrough(), { isTTY: true });
    const r = analysisReporter(out);
    r.update(analysis(1, "eigen"));
    r.update(analysis(2, "eigen"));
    r.stop();
    expect(String(out.read())).toBe(`\r\x1b[K${formatAnalysis(analysis(1, "eigen"))}\r\x1b[K${formatAnalysis(analysis(2, "eigen"))}\n`);
  });
});
