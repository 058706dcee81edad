/**
 * NTK analyses of a checkpoint, mirroring the core's `NtkConfig` (`crates/core/src/ntk/analysis.rs`)
 * field by field, camelCase, with the same defaults (`NtkConfig::default()`). `memoryBudget` also
 * takes a size as text (`"2GiB"`, `"500MB"`); the core gets bytes.
 */
import { z } from "zod";
import { SPLITS } from "./eval.js";
import * as f from "./fields.js";
import { PRECISIONS } from "./hessian.js";

/** `full` (`NC × NC`), `blocks` (the same values as `N×C×N×C`), `trace` (`N×N`, summed over logits). */
export const NTK_KERNELS = ["full", "blocks", "trace"] as const;
/** `jacobian` and `structured` form the kernel; `ntvp` is matrix-free (Lanczos top-k only). */
export const NTK_METHODS = ["jacobian", "structured", "ntvp"] as const;

/** The core's default memory budget: 4 GiB. */
export const NTK_MEMORY_BUDGET = 4 * 2 ** 30;

const UNITS: Readonly<Record<string, number>> = { "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** `"2GiB"` → 2147483648, `"500MB"` → 500000000, `"4096"` → 4096; undefined if it is not a size. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()];
  return m === null || unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}

const BYTES_ERROR = "must be a size in bytes: a whole number ≥ 1, or text such as 4GiB, 500MB, 1kB";

/** A number of bytes, or a size as text with a unit (B, kB, MB, GB, TB; KiB, MiB, GiB, TiB). */
const bytes = () =>
  z
    .union([z.number(), z.string()], { error: BYTES_ERROR })
    .transform((v, ctx) => {
      const n = typeof v === "number" ? v : parseBytes(v);
      if (n !== undefined && n >= 1 && Number.isSafeInteger(n)) return n;
      ctx.addIssue({ code: "custom", message: BYTES_ERROR });
      return z.NEVER;
    });

const { choice } = f;

/** Which kernel of which model over which samples: what every NTK call needs. */
const kernel = {
  checkpoint: f.path().describe("Checkpoint file (.safetensors) whose weights the kernel is taken at."),
  dataDir: f.checkpointDataDir(),
  split: choice(SPLITS).default("train").describe("Which split the samples come from."),
  n: f.positiveInt().default(500).describe("The kernel is over the first N images of the split."),
  kernel: choice(NTK_KERNELS)
    .default("trace")
    .describe("full: NC×NC (row n·C + c); blocks: the same values as N×C×N×C; trace: N×N, summed over the logits."),
};

/** How it is computed and where it goes. */
const run = {
  layers: z
    .array(z.string({ error: "must be a parameter-name prefix" }).min(1, { error: "must not be empty" }), { error: "must be a list" })
    .default([])
    .describe("Restrict the kernel to the parameters whose names start with these prefixes (conv1, fc3.weight); all when empty."),
  memoryBudget: bytes()
    .default(NTK_MEMORY_BUDGET)
    .describe("Bytes the kernel and its Jacobians may take (4GiB, 500MB, or a number); more is refused with E_MEMORY, saying what fits."),
  batchSize: f.positiveInt().default(500).describe("Images per forward pass (memory only; the kernel is the same)."),
  precision: choice(PRECISIONS).default("f32").describe("Arithmetic of the Jacobians, products and eigendecomposition: f32 (the model's, fast) or f64."),
  outDir: f
    .path()
    .optional()
    .describe("Directory for kernel.npy, eigenvalues.npy, top_eigenvalues.npy and ntk.json; nothing written if unset."),
  seed: f.seed().default(0).describe("Seed of the Lanczos start vector."),
};

const MATRIX_FREE = "the matrix-free method (ntvp) computes top eigenvalues only: give topK ≥ 1";

/** Any NTK analysis (`ntk`). Defaults are the core's: the trace kernel of 500 training images, by the
 * structured method, fully eigendecomposed. */
export const NtkConfigSchema = z
  .strictObject({
    ...kernel,
    method: choice(NTK_METHODS)
      .default("structured")
      .describe("jacobian: per-sample Jacobians, Gram product; structured: linear layers from inputs and cotangents; ntvp: matrix-free products (top-k only, no kernel file)."),
    topK: f.nonNegativeInt().default(0).describe("Top eigenvalues by Lanczos on kernel–vector products (never forms the kernel); 0 for none."),
    eigen: z.boolean({ error: "must be true or false" }).default(true).describe("Full eigendecomposition of the formed kernel."),
    ...run,
  })
  .refine((c) => c.method !== "ntvp" || c.topK > 0, {
    path: ["topK"],
    error: MATRIX_FREE,
    // Also when other fields are bad, so that one pass reports every problem.
    when: (payload) => {
      const v = payload.value as { method?: unknown; topK?: unknown } | null;
      return v?.method === "ntvp" && (v.topK === undefined || v.topK === 0);
    },
  });

/** `ntkEigen`: the `k` largest eigenvalues, matrix-free by default (nothing N² is formed). */
export const NtkEigenConfigSchema = z.strictObject({
  ...kernel,
  k: f.positiveInt().default(1).describe("How many of the largest eigenvalues."),
  method: choice(NTK_METHODS)
    .default("ntvp")
    .describe("ntvp: matrix-free kernel–vector products; jacobian or structured also form the kernel (and its block check)."),
  ...run,
});

export type NtkKernel = (typeof NTK_KERNELS)[number];
export type NtkMethod = (typeof NTK_METHODS)[number];
export type NtkConfig = z.output<typeof NtkConfigSchema>;
export type NtkConfigInput = z.input<typeof NtkConfigSchema>;
export type NtkEigenConfigInput = z.input<typeof NtkEigenConfigSchema>;
