/**
 * Source training and adaptation as validated, promise-returning calls over the core: configs are
 * checked by the zod schemas, paths made absolute, `dataDir` resolved as the SDK does (given, else
 * `$GOLDPAN_DATA`, else the bundled data/), and the work runs through the SDK's `runTask` (progress,
 * AbortSignal, `GoldpanError`s).
 */
import { resolve } from "node:path";
import { parseConfig, resolveDataDir, runTask, type RunOptions } from "@goldpan/sdk";
import {
  AdaptConfigSchema,
  SourceConfigSchema,
  type AdaptConfig,
  type AdaptConfigInput,
  type SourceConfig,
  type SourceConfigInput,
} from "./config.js";
import type { AdaptResult, SourceResult } from "./results.js";

/** A config as the core gets it: validated, `dataDir` resolved, paths absolute. */
export type ResolvedSourceConfig = SourceConfig & { dataDir: string };
export type ResolvedAdaptConfig = AdaptConfig & { dataDir: string };

/** Validates (throws `E_CONFIG` listing every bad field); no defaults added, no I/O. */
export function parseSourceConfig(input: unknown): SourceConfig {
  return parseConfig(SourceConfigSchema, input, "sfda source config");
}

export function parseAdaptConfig(input: unknown): AdaptConfig {
  return parseConfig(AdaptConfigSchema, input, "sfda adapt config");
}

export function resolveSourceConfig(input: unknown): ResolvedSourceConfig {
  const c = parseSourceConfig(input);
  const resolved: ResolvedSourceConfig = { ...c, dataDir: resolveDataDir(c.dataDir) };
  if (c.outDir !== undefined) resolved.outDir = resolve(c.outDir);
  return resolved;
}

export function resolveAdaptConfig(input: unknown): ResolvedAdaptConfig {
  const c = parseAdaptConfig(input);
  const resolved: ResolvedAdaptConfig = { ...c, from: resolve(c.from), dataDir: resolveDataDir(c.dataDir) };
  if (c.outDir !== undefined) resolved.outDir = resolve(c.outDir);
  return resolved;
}

/** Trains a source model with SHOT's recipe; with `outDir`, writes `<outDir>/source.safetensors`.
 * Rejects with a `GoldpanError` (`E_CONFIG`, `E_DATA_*`, `E_CANCELLED`, …). */
export async function trainSource(config: SourceConfigInput, options: RunOptions = {}): Promise<SourceResult> {
  const c = resolveSourceConfig(config);
  const r = await runTask(options, (b, onProgress, token) => b.sfdaSource(c, onProgress, token));
  return r as unknown as SourceResult;
}

/** Adapts a source model to the target domain without its labels; with `outDir`, writes
 * `<outDir>/adapted.safetensors`. Progress events' `loss`/`accuracy` may be NaN (not computed);
 * an epoch event's `testAccuracy` is the target test accuracy. */
export async function adapt(config: AdaptConfigInput, options: RunOptions = {}): Promise<AdaptResult> {
  const c = resolveAdaptConfig(config);
  const r = await runTask(options, (b, onProgress, token) => b.sfdaAdapt(c, onProgress, token));
  return r as unknown as AdaptResult;
}
