/**
 * `goldpan train --resume <checkpoint>`: continue a run with the checkpoint's own config (and the
 * few allowed overrides), by default in the checkpoint's directory, appending to its metrics.jsonl.
 */
import { dirname, resolve } from "node:path";
import { parseResumeConfig, readCheckpoint, resolveDataDirOverride, resume } from "@goldpan/sdk";
import type { Context } from "../context.js";
import { reportTrainResult, runTraining } from "../training.js";

export async function resumeCommand(cmd: { config: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const c = parseResumeConfig(cmd.config);
  const info = readCheckpoint(c.checkpoint);
  const outDir = resolve(c.outDir ?? dirname(resolve(c.checkpoint)));
  const dataDir = resolveDataDirOverride(c.dataDir);
  // The stored config with the overrides applied; unset options (null in the checkpoint) left out,
  // as in a fresh run's config.json.
  const stored = Object.fromEntries(Object.entries(info.config).filter(([, v]) => v !== null));
  const config = {
    ...stored,
    ...(dataDir === undefined ? {} : { dataDir }),
    ...(c.epochs === undefined ? {} : { epochs: c.epochs }),
    ...(c.device === undefined ? {} : { device: c.device }),
    outDir,
  };
  if (!cmd.json) {
    ctx.stderr.write(`resuming ${info.model} on ${info.dataset} at epoch ${info.epoch}, step ${info.step} (${info.path}) → ${outDir}\n`);
  }
  const result = await runTraining({ outDir, config, metrics: "append" }, ctx, (options) => resume({ ...c, outDir }, options));
  reportTrainResult(result, outDir, ctx, cmd.json);
  return 0;
}
