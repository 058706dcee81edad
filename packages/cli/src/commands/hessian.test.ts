import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import type { HessianReport } from "@goldpan/sdk";
import { formatHessianReport, reportPath } from "./hessian.js";

const report: HessianReport = {
  model: "lenet5",
  dataset: "mnist",
  split: "train",
  samples: 64,
  labels: "true",
  mode: "eval",
  parameters: 44426,
  loss: 0.412345678,
  gradNorm: 0.0912345,
  eigen: { values: [12.3456789, 3.2], residuals: [0.000312, 0.0009], converged: true, products: 17 },
  trace: { estimate: 101.23456, stdError: 4.5678, samples: 30, history: [] },
  density: { grid: [], density: [], nodes: [[-0.5, 1, 12.3], [0.1, 2]], weights: [], products: 5 },
  products: 52,
  wallSec: 3.21,
  progressEvents: 52,
};

describe("goldpan hessian", () => {
  it("writes the report next to the checkpoint, into a directory, or to a .json file", () => {
    expect(reportPath(undefined, "runs/x/last.safetensors")).toBe(resolve("runs/x/hessian.json"));
    expect(reportPath("out", "c")).toBe(join(resolve("out"), "hessian.json"));
    expect(reportPath("/a/b.json", "c")).toBe("/a/b.json");
  });

  it("prints loss, ‖g‖, eigenvalues with residuals, trace ± error, the density's support, products and time", () => {
    expect(formatHessianReport(report, "f32", "/r/hessian.json")).toBe(
      [
        "Hessian of lenet5 (44,426 parameters) over 64 mnist train images (true labels, eval mode, f32)",
        "  loss 0.412346  ‖g‖ 0.0912345",
        "  top 2 eigenvalues (Lanczos, 17 products, converged):",
        "     #    eigenvalue   residual",
        "     1       12.3457    3.12e-4",
        "     2           3.2    9.00e-4",
        "  trace 101.235 ± 4.5678 (Hutchinson, 30 samples)",
        "  density support [-0.5, 12.3], 5 nodes (stochastic Lanczos quadrature, 2 runs, 5 products)",
        "  52 Hessian–vector products in 3.2s",
        "  report: /r/hessian.json",
        "",
      ].join("\n"),
    );
    expect(formatHessianReport({ ...report, eigen: null, trace: null, density: null }, "f64", "h.json")).toBe(
      "Hessian of lenet5 (44,426 parameters) over 64 mnist train images (true labels, eval mode, f64)\n" +
        "  loss 0.412346  ‖g‖ 0.0912345\n  52 Hessian–vector products in 3.2s\n  report: h.json\n",
    );
  });
});
