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

export * from "./config/index.js";
export * from "./errors.js";
/** The addon's module type, for packages that run their own tasks through {@link runTask}. */
export type { Binding };

/** A progress event: `kind` "step" every `progressEvery` steps, "epoch" at each epoch's end. */
export type Progress = Binding.BindingProgress;
export type TrainResult = Binding.BindingTrainResult;
export type EvalResult = Binding.BindingEvalResult;
export type ModelInfo = Binding.BindingModelInfo;
export type BenchmarkResult = Binding.BindingBenchmarkResult;
/** What a checkpoint holds; `config` is `configJson` parsed (the run's full training config). */
export interface CheckpointInfo extends Binding.BindingCheckpointInfo {
  config: Record<string, unknown>;
}

export interface RunOptions {
  /** Called on the main thread for each progress event. If it throws, the run is cancelled and
   * rejects with that error. */
  onProgress?: (progress: Progress) => void;
  /** Aborting cancels the run within one step; it then rejects with `E_CANCELLED`, having written
   * `last.safetensors` when the run has an `outDir`. */
  signal?: AbortSignal;
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

/** Yields to the event loop until `done()`, for at most `limitMs` (events already queued
 * natively arrive within a turn or two; the limit only guards against a lost event). */
async function settleEvents(done: () => boolean, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!done() && Date.now() < deadline) {
    await new Promise<void>((r) => setImmediate(r));
  }
}

/**
 * Runs one long addon call: `call` gets the addon, a progress callback and a fresh `CancelToken`
 * tied to `options.signal`. A throwing `onProgress` cancels the run and becomes its rejection;
 * every error is normalized to a {@link GoldpanError}; the promise settles only after every
 * progress event the core sent (`progressEvents` on the result or the error) has been delivered,
 * since events and the result travel on different native queues. Packages above the SDK
 * (`@goldpan/sfda`) run their tasks through this instead of loading the addon themselves.
 */
export async function runTask<T>(
  options: RunOptions,
  call: (b: typeof Binding, onProgress: (p: Progress) => void, token: Binding.CancelToken) => Promise<T>,
): Promise<T> {
  const { signal, onProgress } = options;
  if (signal?.aborted) throw new GoldpanError("E_CANCELLED", "cancelled before it started");
  const b = loadBinding();
  const token = new b.CancelToken();
  const onAbort = (): void => token.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });

  let received = 0;
  let callbackFailed = false;
  let callbackError: unknown;
  const progress = (p: Progress): void => {
    received++;
    if (callbackFailed || !onProgress) return;
    try {
      onProgress(p);
    } catch (e) {
      callbackFailed = true;
      callbackError = e;
      token.cancel();
    }
  };

  try {
    const result = await call(b, progress, token);
    const sent = (result as { progressEvents?: number }).progressEvents ?? 0;
    await settleEvents(() => received >= sent);
    if (callbackFailed) throw callbackError;
    return result;
  } catch (e) {
    const sent = (e as { progressEvents?: unknown } | null)?.progressEvents;
    if (typeof sent === "number") await settleEvents(() => received >= sent);
    throw normalizeError(callbackFailed ? callbackError : e);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
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
