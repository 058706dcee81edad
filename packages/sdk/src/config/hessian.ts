/**
 * Hessian analyses of a checkpoint, mirroring the core's `HessianConfig`
 * (`crates/core/src/hessian/analysis.rs`) field by field, camelCase, with the same defaults
 * (`HessianConfig::default()`). The core's spectral routines need more than it checks up front
 * (Lanczos steps ≥ eigenpairs, at least 10 trace samples); those are checked here, by field.
 */
import { z } from "zod";
import { SPLITS } from "./eval.js";
import * as f from "./fields.js";

export const HESSIAN_LABELS = ["true", "random"] as const;
export const HESSIAN_MODES = ["eval", "train"] as const;
export const PRECISIONS = ["f32", "f64"] as const;

/** Hutchinson's estimator draws at least this many samples (the core's `TraceConfig::min_samples`). */
export const MIN_TRACE_SAMPLES = 10;

const { choice } = f;
const tolerance = () =>
  z.number({ error: "must be a number" }).min(0, { error: "must be ≥ 0" });

/** Which loss, at which weights, over which samples: what every Hessian call needs. */
const setup = {
  checkpoint: f.path().describe("Checkpoint file (.safetensors) whose weights the Hessian is taken at."),
  dataDir: f.checkpointDataDir(),
  split: choice(SPLITS).default("train").describe("Which split the samples come from."),
  samples: f.positiveInt().default(1000).describe("The loss is the mean over the first N images of the split."),
  batchSize: f.positiveInt().default(500).describe("Images per forward/backward pass (memory only; the result is the same)."),
  labels: choice(HESSIAN_LABELS)
    .optional()
    .describe("Labels of the loss: true or random (training's own draw); default: those the checkpoint was trained on."),
  mode: choice(HESSIAN_MODES)
    .default("eval")
    .describe("eval: running batch-norm statistics, no dropout (PyHessian's setting); train: batch statistics and the dropout masks of the seed."),
  precision: choice(PRECISIONS).default("f32").describe("Arithmetic of the products: f32 (the model's, fast) or f64."),
  seed: f.seed().default(0).describe("Seed of the random start and probe vectors (and of train-mode dropout)."),
};

const eigen = {
  maxIter: f.positiveInt().default(100).describe("Cap on Lanczos steps (Hessian–vector products) for the eigenpairs."),
  tol: tolerance().default(1e-3).describe("Stop when every eigenpair's relative residual is at most this."),
};

const trace = {
  traceSamples: f
    .positiveInt()
    .min(MIN_TRACE_SAMPLES, { error: `must be ≥ ${MIN_TRACE_SAMPLES} (the trace's minimum sample count)` })
    .default(100)
    .describe("Most Rademacher samples (one product each) for the trace."),
  traceTol: tolerance().default(1e-3).describe("Stop sampling when the running mean moves by at most this, relatively."),
};

const density = {
  densitySteps: f.positiveInt().default(90).describe("Lanczos steps per run of the spectral density (stochastic Lanczos quadrature)."),
  densityRuns: f.positiveInt().default(1).describe("Independent runs (start vectors) averaged in the density."),
};

/** Lanczos needs a step per eigenpair at least. Checked also when other fields are bad (`when`),
 * so that one pass reports every problem. */
function maxIterCovers(key: "topK" | "k") {
  return {
    path: ["maxIter"],
    error: "must be ≥ the number of eigenpairs asked for (one Lanczos step each at least)",
    when: (payload: { value: unknown }): boolean => {
      const v = payload.value as Record<string, unknown> | null;
      return typeof v?.[key] === "number" && typeof v.maxIter === "number";
    },
  };
}

/** Any of the analyses at once (`hessian`). Defaults are the core's; with none of `topK`, `trace`
 * and `density` only the loss and gradient norm are computed. */
export const HessianConfigSchema = z
  .strictObject({
    ...setup,
    topK: f.nonNegativeInt().default(0).describe("Top eigenpairs to compute (Lanczos); 0 for none."),
    ...eigen,
    trace: z.boolean({ error: "must be true or false" }).default(false).describe("Estimate the trace (Hutchinson)."),
    ...trace,
    density: z
      .boolean({ error: "must be true or false" })
      .default(false)
      .describe("Estimate the eigenvalue density (stochastic Lanczos quadrature)."),
    ...density,
  })
  .refine((c) => c.maxIter >= c.topK, maxIterCovers("topK"));

/** `hessianEigen`: the `k` algebraically largest eigenpairs. */
export const HessianEigenConfigSchema = z
  .strictObject({
    ...setup,
    k: f.positiveInt().default(1).describe("How many of the largest eigenpairs."),
    ...eigen,
  })
  .refine((c) => c.maxIter >= c.k, maxIterCovers("k"));

/** `hessianTrace`: Hutchinson's trace estimate. */
export const HessianTraceConfigSchema = z.strictObject({ ...setup, ...trace });

/** `hessianDensity`: the eigenvalue density by stochastic Lanczos quadrature. */
export const HessianDensityConfigSchema = z.strictObject({ ...setup, ...density });

/** `hvp`: one exact product; only which loss and where. */
export const HvpConfigSchema = z.strictObject(setup);

export type HessianConfig = z.output<typeof HessianConfigSchema>;
export type HessianConfigInput = z.input<typeof HessianConfigSchema>;
export type HessianEigenConfigInput = z.input<typeof HessianEigenConfigSchema>;
export type HessianTraceConfigInput = z.input<typeof HessianTraceConfigSchema>;
export type HessianDensityConfigInput = z.input<typeof HessianDensityConfigSchema>;
export type HvpConfigInput = z.input<typeof HvpConfigSchema>;
