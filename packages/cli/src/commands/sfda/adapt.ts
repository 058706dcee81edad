/** `goldpan sfda adapt`: validate the flags as an adapt config, adapt into a run directory, report
 * the target test accuracy before → after and the label-free criterion. */
import { METHOD_LABELS, adapt, resolveAdaptConfig, type AdaptResult } from "@goldpan/sfda";
import { jsonLine, type Context } from "../../context.js";
import { runTraining } from "../../training.js";
import { defaultRunDir } from "../train.js";
import { sfdaError } from "./errors.js";

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

export function formatAdaptResult(r: AdaptResult, target: string): string {
  const delta = (r.after.accuracy - r.before.accuracy) * 100;
  const training = r.epochs === 0 ? "no gradient steps" : `${r.epochs} epoch${r.epochs === 1 ? "" : "s"}, ${r.steps} steps`;
  return [
    `${METHOD_LABELS[r.method]} on ${target} (${training}, ${r.wallSec.toFixed(1)}s)`,
    `  target test accuracy: ${pct(r.before.accuracy)} → ${pct(r.after.accuracy)} ` +
      `(${delta >= 0 ? "+" : ""}${delta.toFixed(2)} points, ${r.after.count} images)`,
    `  criterion (mutual information, no labels): ${r.mutualInformationBefore.toFixed(4)} → ${r.mutualInformationAfter.toFixed(4)}`,
    ...(r.checkpoint === null ? [] : [`  checkpoint: ${r.checkpoint}`]),
    `  weights sha256: ${r.weightsHash}`,
    "",
  ].join("\n");
}

export async function sfdaAdaptCommand(cmd: { config: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const config = resolveAdaptConfig({ ...cmd.config, outDir: cmd.config.outDir ?? defaultRunDir(new Date()) });
  const outDir = config.outDir!;
  if (!cmd.json) {
    ctx.stderr.write(`adapting ${config.from} to ${config.target} with ${config.method} (${config.dataDir}) → ${outDir}\n`);
  }
  let result: AdaptResult;
  try {
    result = await runTraining(
      {
        outDir,
        config,
        metrics: "truncate",
        prefix: "adapt-",
        onInterrupt: "stopping after the current step",
        progress: { evaluation: "target test" },
      },
      ctx,
      (options) => adapt(config, options),
    );
  } catch (e) {
    throw sfdaError(e, "nothing was written; rerun to adapt again");
  }
  ctx.stdout.write(cmd.json ? jsonLine({ ...result, outDir }) : formatAdaptResult(result, config.target));
  return 0;
}
