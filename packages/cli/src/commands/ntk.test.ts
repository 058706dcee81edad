import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import type { NtkReport } from "@goldpan/sdk";
import { formatNtkReport, ntkOutDir } from "./ntk.js";

const report: NtkReport = {
  model: "lenet5",
  dataset: "mnist",
  n: 2,
  classes: 2,
  kernel: "full",
  method: "structured",
  parameters: 44426,
  shape: [4, 4],
  trace: 12.3456789,
  eigenvalues: [9.87654321, 2, 0.4, 0.0123],
  condition: 803.0,
  minEigenvalue: 0.0123,
  topK: [9.876543, 1.99999],
  topKProducts: 9,
  pdFraction: 0.75,
  pdFractionDiagonal: 1,
  files: ["/o/kernel.npy", "/o/eigenvalues.npy", "/o/top_eigenvalues.npy", "/o/ntk.json"],
  wallSec: 1.26,
  progressEvents: 3,
};

describe("goldpan ntk", () => {
  it("writes into ntk/ beside the checkpoint, or --out", () => {
    expect(ntkOutDir(undefined, "runs/x/last.safetensors")).toBe(resolve("runs/x/ntk"));
    expect(ntkOutDir("out", "c")).toBe(resolve("out"));
    expect(ntkOutDir("/a/b", "c")).toBe(join("/a", "b"));
  });

  it("prints n, classes, shape, parameters, trace, eigenvalues with the Lanczos top-k beside, condition, λmin, PD blocks, files, time", () => {
    expect(formatNtkReport(report, { split: "train", precision: "f32" })).toBe(
      [
        "NTK of lenet5 over 2 mnist train images (full kernel, structured method, f32)",
        "  n            2",
        "  classes      2",
        "  kernel       4 × 4",
        "  parameters   44,426",
        "  trace        12.3457",
        "  eigenvalues  4 (dense); the largest 4, with the top 2 by Lanczos, 9 kernel–vector products:",
        "     #    eigenvalue       Lanczos",
        "     1       9.87654       9.87654",
        "     2             2       1.99999",
        "     3           0.4",
        "     4        0.0123",
        "  condition    803",
        "  λmin         0.0123",
        "  PD blocks    75.0% of the 2×2 blocks, 100.0% of the diagonal ones (Eq. 7)",
        "  files        /o/kernel.npy",
        "               /o/eigenvalues.npy",
        "               /o/top_eigenvalues.npy",
        "               /o/ntk.json",
        "  time         1.3s",
        "",
      ].join("\n"),
    );
  });

  it("shows the top-k alone when nothing is formed, an infinite condition, and at most 10 eigenvalues", () => {
    const matrixFree: NtkReport = { ...report, kernel: "trace", method: "ntvp", shape: [], trace: null, eigenvalues: [5, 4], condition: null, minEigenvalue: null, topK: [5, 4], pdFraction: null, pdFractionDiagonal: null, files: [] };
    expect(formatNtkReport(matrixFree, { split: "test", precision: "f64" })).toBe(
      [
        "NTK of lenet5 over 2 mnist test images (trace kernel, ntvp method, f64)",
        "  n            2",
        "  classes      2",
        "  kernel       not formed (matrix-free)",
        "  parameters   44,426",
        "  eigenvalues  top 2 by Lanczos, 9 kernel–vector products:",
        "     #    eigenvalue",
        "     1             5",
        "     2             4",
        "  time         1.3s",
        "",
      ].join("\n"),
    );
    const many = Array.from({ length: 12 }, (_, i) => 12 - i);
    const dense = formatNtkReport({ ...report, eigenvalues: many, topK: null, minEigenvalue: -1e-9, condition: null }, { split: "train", precision: "f32" });
    expect(dense).toContain("  eigenvalues  12 (dense); the largest 10:\n     #    eigenvalue\n     1            12\n");
    expect(dense).toContain("    10             3\n  condition    ∞ (λmin ≤ 0)\n  λmin         -1e-9\n");
    expect(formatNtkReport({ ...report, eigenvalues: [], minEigenvalue: null, condition: null, topK: null }, { split: "train", precision: "f32" })).not.toMatch(/^ {2}eigenvalues|^ {2}condition|^ {2}λmin/m);
  });
});
