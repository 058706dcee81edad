/**
 * The empirical neural tangent kernel of a checkpoint's logits, `Θ(x, x') = ∇θf(x)·∇θf(x')ᵀ`, over
 * the first `n` images of a split: {@link ntk} forms the kernel (full, blocks or trace) and takes
 * its spectrum and Eq. 7's block check, writing `.npy` files with `outDir`; {@link ntkEigen} finds
 * the top eigenvalues matrix-free by Lanczos. Both run off the JS thread, report "analysis"
 * progress events per phase and stop on an `AbortSignal`.
 */
import {
  NtkConfigSchema,
  NtkEigenConfigSchema,
  parseConfig,
  type NtkConfig,
  type NtkConfigInput,
  type NtkEigenConfigInput,
  type NtkKernel,
  type NtkMethod,
} from "./config/index.js";
import { resolveAnalysisPaths } from "./paths.js";
import { runTask, type RunOptions } from "./task.js";

/** The core's `NtkReport` (`crates/core/src/ntk/analysis.rs`), camelCase. */
export interface NtkReport {
  model: string;
  dataset: string;
  /** Images the kernel is over (`n`, or fewer if the split is smaller). */
  n: number;
  classes: number;
  kernel: NtkKernel;
  method: NtkMethod;
  /** Parameters the kernel is over (those `layers` selects). */
  parameters: number;
  /** Shape of `kernel.npy`: `[N·C, N·C]` (full), `[N, C, N, C]` (blocks), `[N, N]` (trace); empty
   * when the kernel is not formed (ntvp). */
  shape: number[];
  /** The formed kernel's trace; null for ntvp. */
  trace: number | null;
  /** Descending: all of them with `eigen`, else the Lanczos top-k. */
  eigenvalues: number[];
  /** λmax / λmin of the full spectrum; null without it, or when λmin ≤ 0 (infinite). */
  condition: number | null;
  minEigenvalue: number | null;
  /** The Lanczos top-k (with `topK`), and the kernel–vector products it took. */
  topK: number[] | null;
  topKProducts: number | null;
  /** Eq. 7: fraction of `C×C` blocks Θ(xᵢ, xⱼ) with a positive-definite symmetric part, and over
   * the diagonal blocks only; null for the trace kernel. */
  pdFraction: number | null;
  pdFractionDiagonal: number | null;
  /** What was written to `outDir` (absolute), `ntk.json` last. */
  files: string[];
  wallSec: number;
  /** How many progress events the core sent (the SDK waits for them before it resolves). */
  progressEvents: number;
}

/** Validates (throws `E_CONFIG` listing every bad field) and fills the core's defaults, with
 * `memoryBudget` in bytes; no I/O. */
export function parseNtkConfig(input: unknown): NtkConfig {
  return parseConfig(NtkConfigSchema, input, "ntk config");
}

async function analyse(config: NtkConfig, options: RunOptions): Promise<NtkReport> {
  const c = resolveAnalysisPaths(config);
  const r = await runTask(options, (b, onProgress, token) => b.ntkAnalyse(c, onProgress, token));
  return r as unknown as NtkReport;
}

/** The kernel `config` asks for, its spectrum (`eigen`, `topK`) and block check, and with `outDir`
 * `kernel.npy`, `eigenvalues.npy`, `top_eigenvalues.npy` and `ntk.json`. Rejects with `E_CONFIG`,
 * `E_MEMORY` (a kernel over `memoryBudget`; the message says what fits), `E_CHECKPOINT`,
 * `E_DATA_*`, `E_CANCELLED`, … as a `GoldpanError`. */
export async function ntk(config: NtkConfigInput, options: RunOptions = {}): Promise<NtkReport> {
  return analyse(parseNtkConfig(config), options);
}

/** The `k` (default 1) largest eigenvalues of the kernel by Lanczos, matrix-free by default
 * (`method: "ntvp"`: nothing N² is formed), in `topK` and `eigenvalues`. */
export async function ntkEigen(config: NtkEigenConfigInput, options: RunOptions = {}): Promise<NtkReport & { topK: number[] }> {
  const { k, ...c } = parseConfig(NtkEigenConfigSchema, config, "ntk eigen config");
  return (await analyse({ ...c, topK: k, eigen: false }, options)) as NtkReport & { topK: number[] };
}
