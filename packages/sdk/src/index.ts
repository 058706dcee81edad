/**
 * `@goldpan/sdk`: goldpan's core as validated, promise-returning calls.
 *
 * Configs are checked by the zod schemas in `./config/` (the one truth for fields and defaults)
 * before the core sees them; every failure is a {@link GoldpanError} with a stable `code`.
 */
import { resolve } from "node:path";
import { loadBinding, type Binding } from "./binding.js";
import {
  BenchmarkConfigSchema,
  EvalConfigSchema,
  ResumeConfigSchema,
  TrainConfigSchema,
  parseConfig,
  resolveDataDir,
  resolveDataDirOverride,
  type BenchmarkConfig,
  type BenchmarkConfigInput,
  type EvalConfig,
  type EvalConfigInput,
  type ResumeConfig,
  type ResumeConfigInput,
  type TrainConfig,
  type TrainConfigInput,
} from "./config/index.js";
import { GoldpanError, normalizeError } from "./errors.js";
import { runTask, type RunOptions } from "./task.js";

export * from "./config/index.js";
export * from "./errors.js";
export * from "./task.js";
export * from "./hessian.js";
export * from "./ntk.js";
/** The addon's module type, for packages that run their own tasks through {@link runTask}. */
export type { Binding };

export type TrainResult = Binding.BindingTrainResult;
export type EvalResult = Binding.BindingEvalResult;
export type ModelInfo = Binding.BindingModelInfo;
export type BenchmarkResult = Binding.BindingBenchmarkResult;
/** What a checkpoint holds; `config` is `configJson` parsed (the run's full training config). */
export interface CheckpointInfo extends Binding.BindingCheckpointInfo {
  config: Record<string, unknown>;
}

/** A training config as the core gets it: validated, defaults filled, paths absolute. */
export type ResolvedTrainConfig = TrainConfig & { dataDir: string };

/** Validates (throws `E_CONFIG` listing every bad field) and fills defaults; no I/O. */
export function parseTrainConfig(input: unknown): TrainConfig {
  return parseConfig(TrainConfigSchema, input, "train config");
}

/** {@link parseTrainConfig}, then `dataDir` resolved (explicit, `$GOLDPAN_DATA`, bundled) and
 * `outDir` made absolute. */
export function resolveTrainConfig(input: unknown): ResolvedTrainConfig {
  const config = parseTrainConfig(input);
  const resolved: ResolvedTrainConfig = { ...config, dataDir: resolveDataDir(config.dataDir) };
  if (config.outDir !== undefined) resolved.outDir = resolve(config.outDir);
  return resolved;
}

export function parseEvalConfig(input: unknown): EvalConfig {
  return parseConfig(EvalConfigSchema, input, "eval config");
}

export function parseResumeConfig(input: unknown): ResumeConfig {
  return parseConfig(ResumeConfigSchema, input, "resume config");
}

export function parseBenchmarkConfig(input: unknown): BenchmarkConfig {
  return parseConfig(BenchmarkConfigSchema, input, "benchmark config");
}

/** Trains a model. Rejects with `E_CONFIG` (every bad field listed), `E_DATA_*`, `E_DEVICE`,
 * `E_NAN_LOSS`, `E_CANCELLED`, … as a {@link GoldpanError}. */
export async function train(config: TrainConfigInput, options: RunOptions = {}): Promise<TrainResult> {
  const c = resolveTrainConfig(config);
  return runTask(options, (b, onProgress, token) => b.train(c, onProgress, token));
}

/** Continues a run from a checkpoint (the checkpoint's config, with the given overrides). */
export async function resume(config: ResumeConfigInput, options: RunOptions = {}): Promise<TrainResult> {
  const c = parseResumeConfig(config);
  const opts: Binding.BindingResumeOptions = { ...c, checkpoint: resolve(c.checkpoint) };
  const dataDir = resolveDataDirOverride(c.dataDir);
  if (dataDir === undefined) delete opts.dataDir;
  else opts.dataDir = dataDir;
  if (c.outDir !== undefined) opts.outDir = resolve(c.outDir);
  return runTask(options, (b, onProgress, token) => b.resume(opts, onProgress, token));
}

/** Loss and accuracy of a checkpoint on one split. */
export async function evaluate(config: EvalConfigInput, options: Pick<RunOptions, "signal"> = {}): Promise<EvalResult> {
  const c = parseEvalConfig(config);
  const opts: Binding.BindingEvalOptions = {
    ...c,
    checkpoint: resolve(c.checkpoint),
    dataDir: resolveDataDir(c.dataDir),
  };
  return runTask(options, (b, _onProgress, token) => b.evaluate(opts, token));
}

/** Times a model on synthetic batches. */
export async function benchmark(config: BenchmarkConfigInput = {}): Promise<BenchmarkResult> {
  const c = parseBenchmarkConfig(config);
  try {
    return await loadBinding().benchmark(c);
  } catch (e) {
    throw normalizeError(e);
  }
}

function sync<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw normalizeError(e);
  }
}

/** What a checkpoint holds, without loading its weights onto a device. */
export function readCheckpoint(path: string): CheckpointInfo {
  const info = sync(() => loadBinding().readCheckpoint(resolve(path)));
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(info.configJson) as Record<string, unknown>;
  } catch (e) {
    throw new GoldpanError("E_CHECKPOINT", `checkpoint ${info.path}: stored config is not JSON`, { cause: e });
  }
  return { ...info, config };
}

/** The model registry. */
export function listModels(): ModelInfo[] {
  return sync(() => loadBinding().listModels());
}

/** Whether this build of the core can use `device: "cuda"`. */
export function cudaAvailable(): boolean {
  return sync(() => loadBinding().cudaAvailable());
}

/** The core's version. */
export function version(): string {
  return sync(() => loadBinding().version());
}
