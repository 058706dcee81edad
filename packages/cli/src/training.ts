/**
 * What `train`, `train --resume`, `sfda source` and `sfda adapt` share: the run directory's config
 * and metrics files (one JSON object per progress event, appended as it arrives), the progress
 * display, Ctrl-C, and (for training) the final report.
 */
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Progress, RunOptions, TrainResult } from "@goldpan/sdk";
import { jsonLine, type Context } from "./context.js";
import { abortOnInterrupt } from "./interrupt.js";
import { progressReporter, type ProgressLabels } from "./progress.js";

export interface RunDir {
  outDir: string;
  /** Written as the config file before the run starts. */
  config: object;
  /** A fresh run truncates the metrics file; a resumed one appends to it. */
  metrics: "truncate" | "append";
  /** The files' names prefix: `source-` gives source-config.json and source-metrics.jsonl, so that
   * an SFDA source run and its adaptation can share a directory. Default none. */
  prefix?: string;
  /** What the first Ctrl-C does, for its message; default: stop and write a checkpoint. */
  onInterrupt?: string;
  progress?: ProgressLabels;
}

/**
 * Prepares the run directory (config.json, metrics.jsonl) and runs `start` with progress going to
 * metrics.jsonl and stderr. If the run fails before anything happened (bad data, unknown model) in
 * a directory this call created, the directory is removed again rather than left as litter.
 */
export async function runTraining<R>(run: RunDir, ctx: Context, start: (options: RunOptions) => Promise<R>): Promise<R> {
  const prefix = run.prefix ?? "";
  const ours: ReadonlySet<string> = new Set([`${prefix}config.json`, `${prefix}metrics.jsonl`]);
  const created = !existsSync(run.outDir);
  await mkdir(run.outDir, { recursive: true });
  await writeFile(join(run.outDir, `${prefix}config.json`), `${JSON.stringify(run.config, null, 2)}\n`);
  const metrics = openSync(join(run.outDir, `${prefix}metrics.jsonl`), run.metrics === "append" ? "a" : "w");
  const reporter = progressReporter(ctx.stderr, run.progress);
  const interrupt = abortOnInterrupt(ctx.stderr, run.onInterrupt);
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
    if (created && events === 0 && (await readdir(run.outDir)).every((f) => ours.has(f))) {
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
