/** `goldpan train`: validate the flags as a TrainConfig, train into a run directory, report. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { resolveTrainConfig, train } from "@goldpan/sdk";
import type { Context } from "../context.js";
import { reportTrainResult, runTraining } from "../training.js";

/** `runs/20250101-120000` (UTC), with `-2`, `-3`, … if that exists already. */
export function defaultRunDir(now: Date, exists: (path: string) => boolean = existsSync): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, "").replace(/-/g, "").replace(/:/g, "").replace("T", "-");
  const base = join("runs", stamp);
  let dir = base;
  for (let i = 2; exists(dir); i++) dir = `${base}-${i}`;
  return dir;
}

export async function trainCommand(cmd: { config: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const config = resolveTrainConfig({ ...cmd.config, outDir: cmd.config.outDir ?? defaultRunDir(new Date()) });
  const outDir = config.outDir!;
  if (!cmd.json) ctx.stderr.write(`training ${config.model} on ${config.dataset} (${config.dataDir}) → ${outDir}\n`);
  const result = await runTraining({ outDir, config, metrics: "truncate" }, ctx, (options) => train(config, options));
  reportTrainResult(result, outDir, ctx, cmd.json);
  return 0;
}
