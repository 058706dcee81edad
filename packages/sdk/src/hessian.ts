/**
 * The loss Hessian of a checkpoint over a sample set, by exact Hessian–vector products: top
 * eigenpairs, trace and eigenvalue density (PyHessian's analyses), and single products.
 * {@link hessian} runs any of the analyses at once; {@link hessianEigen}, {@link hessianTrace} and
 * {@link hessianDensity} are that call for one of them. All run off the JS thread, report one
 * "analysis" progress event per product and stop on an `AbortSignal` within one product.
 */
import type { Binding } from "./binding.js";
import {
  HessianConfigSchema,
  HessianDensityConfigSchema,
  HessianEigenConfigSchema,
  HessianTraceConfigSchema,
  HvpConfigSchema,
  parseConfig,
  type HessianConfig,
  type HessianConfigInput,
  type HessianDensityConfigInput,
  type HessianEigenConfigInput,
  type HessianTraceConfigInput,
  type HvpConfigInput,
} from "./config/index.js";
import { resolveAnalysisPaths } from "./paths.js";
import { runTask, type RunOptions } from "./task.js";

/** The core's `HessianReport` (`crates/core/src/hessian/analysis.rs`), camelCase. */
export interface EigenReport {
  /** The algebraically largest eigenvalues, descending. */
  values: number[];
  /** Relative residual of each, ‖Hv − λv‖ / |λ|, estimated from the Lanczos relation. */
  residuals: number[];
  /** Whether every residual reached `tol` within `maxIter` steps. */
  converged: boolean;
  products: number;
}

export interface TraceReport {
  estimate: number;
  /** Standard error of the estimate: the samples' standard deviation over √samples. */
  stdError: number;
  samples: number;
  /** The running mean after each sample. */
  history: number[];
}

export interface DensityReport {
  /** Where the smoothed density is evaluated, ascending. */
  grid: number[];
  /** The runs' average Gaussian-smoothed spectral density on `grid`; integrates to ≈ 1. */
  density: number[];
  /** Per run: the Gauss quadrature nodes (Ritz values), ascending, and their weights (sum 1). */
  nodes: number[][];
  weights: number[][];
  products: number;
}

export interface HessianReport {
  model: string;
  dataset: string;
  split: "train" | "test";
  /** Images the loss averages over (`samples`, or fewer if the split is smaller). */
  samples: number;
  labels: "true" | "random";
  mode: "eval" | "train";
  parameters: number;
  /** The mean loss over the samples, and its gradient's norm. */
  loss: number;
  gradNorm: number;
  eigen: EigenReport | null;
  trace: TraceReport | null;
  density: DensityReport | null;
  /** Hessian–vector products over the whole sample set, all analyses together. */
  products: number;
  wallSec: number;
  /** How many progress events the core sent (the SDK waits for them before it resolves). */
  progressEvents: number;
}

/** `H·v` with the loss and its gradient `g`, flat in parameter order. */
export type HvpResult = Binding.BindingHvpResult;

/** Validates (throws `E_CONFIG` listing every bad field) and fills the core's defaults; no I/O. */
export function parseHessianConfig(input: unknown): HessianConfig {
  return parseConfig(HessianConfigSchema, input, "hessian config");
}

/** A validated config (fields left out take the core's defaults) through the core's analysis. */
async function analyse(config: Partial<HessianConfig> & { checkpoint: string }, options: RunOptions): Promise<HessianReport> {
  const c = resolveAnalysisPaths(config);
  const r = await runTask(options, (b, onProgress, token) => b.hessianAnalyse(c, onProgress, token));
  return r as unknown as HessianReport;
}

/** The analyses `config` asks for (`topK`, `trace`, `density`; with none, the loss and gradient
 * norm only). Rejects with `E_CONFIG`, `E_CHECKPOINT`, `E_DATA_*`, `E_CANCELLED`, … as a
 * `GoldpanError`. */
export async function hessian(config: HessianConfigInput, options: RunOptions = {}): Promise<HessianReport> {
  return analyse(parseHessianConfig(config), options);
}

/** The `k` (default 1) largest eigenvalues of the Hessian, by Lanczos. */
export async function hessianEigen(
  config: HessianEigenConfigInput,
  options: RunOptions = {},
): Promise<HessianReport & { eigen: EigenReport }> {
  const { k, ...c } = parseConfig(HessianEigenConfigSchema, config, "hessian eigen config");
  return (await analyse({ ...c, topK: k }, options)) as HessianReport & { eigen: EigenReport };
}

/** The Hessian's trace, by Hutchinson's estimator. */
export async function hessianTrace(
  config: HessianTraceConfigInput,
  options: RunOptions = {},
): Promise<HessianReport & { trace: TraceReport }> {
  const c = parseConfig(HessianTraceConfigSchema, config, "hessian trace config");
  return (await analyse({ ...c, trace: true }, options)) as HessianReport & { trace: TraceReport };
}

/** The Hessian's eigenvalue density, by stochastic Lanczos quadrature. */
export async function hessianDensity(
  config: HessianDensityConfigInput,
  options: RunOptions = {},
): Promise<HessianReport & { density: DensityReport }> {
  const c = parseConfig(HessianDensityConfigSchema, config, "hessian density config");
  return (await analyse({ ...c, density: true }, options)) as HessianReport & { density: DensityReport };
}

/** One exact Hessian–vector product `H·v` over the config's samples; `vector` holds one value per
 * parameter, in parameter order (else `E_SHAPE`). */
export async function hvp(
  config: HvpConfigInput,
  vector: Float64Array | readonly number[],
  options: Pick<RunOptions, "signal"> = {},
): Promise<HvpResult> {
  const c = resolveAnalysisPaths(parseConfig(HvpConfigSchema, config, "hvp config"));
  const v = vector instanceof Float64Array ? vector : Float64Array.from(vector);
  return runTask(options, (b, _onProgress, token) => b.hessianHvp(c, v, token));
}
