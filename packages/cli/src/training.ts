/**
 * What `train` and `train --resume` share: the run directory's metrics.jsonl (one JSON object per
 * progress event, appended as it arrives), the progress display, Ctrl-C, and the final report.
 */
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Progress, RunOptions, TrainResult } from "@goldpan/sdk";
import { jsonLine, type Context } from "./context.js";
import { abortOnInterrupt } from "./interrupt.js";
import { progressReporter } from "./progress.js";

export interface RunDir {
  outDir: string;
  /** Written as config.json before training starts. */
  config: object;
  /** A fresh run truncates metrics.jsonl; a resumed one appends to it. */
  metrics: "truncate" | "append";
}

const OURS: ReadonlySet<string> = new Set(["config.json", "metrics.jsonl"]);

/**
 * Prepares the run directory (config.json, metrics.jsonl) and runs `start` with progress going to
 * metrics.jsonl and stderr. If the run fails before anything happened (bad data, unknown model) in
 * a directory this call created, the directory is removed again rather than left as litter.
 */
export async function runTraining(
  run: RunDir,
  ctx: Context,
  start: (options: RunOptions) => Promise<TrainResult>,
): Promise<TrainResult> {
  const created = !existsSync(run.outDir);
  await mkdir(run.outDir, { recursive: true });
  await writeFile(join(run.outDir, "config.json"), `${JSON.stringify(run.config, null, 2)}\n`);
  const metrics = openSync(join(run.outDir, "metrics.jsonl"), run.metrics === "append" ? "a" : "w");
  const reporter = progressReporter(ctx.stderr);
  const interrupt = abortOnInterrupt(ctx.stderr);
  let events = 0;
  try {
    return await start({
      signal: interrupt.signal,
      onProgress(p: Progress) {
        events++;
        writeSync(metrics, jsonLine(p));
        reporter.update(p);
      },
    });
  } catch (e) {
    if (created && events === 0 && (await readdir(run.outDir)).every((f) => OURS.has(f))) {
      await rm(run.outDir, { recursive: true, force: true });
    }
    throw e;
  } finally {
    reporter.stop();
    interrupt.dispose();
    closeSync(metrics);
  }
}

export function reportTrainResult(result: TrainResult, outDir: string, ctx: Context, json: boolean): void {
  if (json) {
    ctx.stdout.write(jsonLine({ ...result, outDir }));
    return;
  }
  const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
  ctx.stdout.write(
    [
      `trained ${result.epochs} epoch${result.epochs === 1 ? "" : "s"} (${result.steps} steps) in ${result.wallSec.toFixed(1)}s`,
      `  train: loss ${result.trainLoss.toFixed(4)}  accuracy ${pct(result.trainAccuracy)}`,
      `  test:  loss ${result.testLoss.toFixed(4)}  accuracy ${pct(result.testAccuracy)}`,
      `  run directory: ${outDir}`,
      ...(result.checkpoint === undefined ? [] : [`  checkpoint: ${result.checkpoint}`]),
      `  weights sha256: ${result.weightsHash}`,
      "",
    ].join("\n"),
  );
}
