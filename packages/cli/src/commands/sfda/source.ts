/** `goldpan sfda source`: validate the flags as a source config, train into a run directory, report. */
import { readCheckpoint } from "@goldpan/sdk";
import { resolveSourceConfig, trainSource, type SourceResult } from "@goldpan/sfda";
import { jsonLine, type Context } from "../../context.js";
import { runTraining } from "../../training.js";
import { defaultRunDir } from "../train.js";
import { sfdaError } from "./errors.js";

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

export async function sfdaSourceCommand(cmd: { config: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const config = resolveSourceConfig({ ...cmd.config, outDir: cmd.config.outDir ?? defaultRunDir(new Date()) });
  const outDir = config.outDir!;
  if (!cmd.json) ctx.stderr.write(`training a source model on ${config.source} (${config.dataDir}) → ${outDir}\n`);
  let result: SourceResult;
  try {
    result = await runTraining(
      {
        outDir,
        config,
        metrics: "truncate",
        prefix: "source-",
        onInterrupt: "stopping after the current step",
        progress: { evaluation: "held-out" },
      },
      ctx,
      (options) => trainSource(config, options),
    );
  } catch (e) {
    throw sfdaError(e, `the best model so far, if any, is in ${outDir}/source.safetensors; rerun to train again`);
  }
  if (cmd.json) {
    ctx.stdout.write(jsonLine({ ...result, outDir }));
    return 0;
  }
  const model = result.checkpoint === null ? undefined : readCheckpoint(result.checkpoint).model;
  ctx.stdout.write(
    [
      `source model${model === undefined ? "" : ` ${model}`} on ${config.source}: best epoch ${result.bestEpoch} of ${result.valAccuracy.length} ` +
        `(${result.steps} steps, ${result.wallSec.toFixed(1)}s)`,
      `  held-out accuracy: ${pct(result.bestValAccuracy)} (${result.valSize} images, ${result.trainSize} trained on)`,
      `  ${config.source} test accuracy: ${pct(result.sourceTestAccuracy)}`,
      ...(result.checkpoint === null ? [] : [`  checkpoint: ${result.checkpoint}`]),
      `  weights sha256: ${result.weightsHash}`,
      ...(result.checkpoint === null
        ? []
        : [`adapt it: goldpan sfda adapt --method pul --from ${result.checkpoint} --target ${config.source === "mnist" ? "usps" : "mnist"}`]),
      "",
    ].join("\n"),
  );
  return 0;
}
