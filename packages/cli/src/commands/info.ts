/** `goldpan info <checkpoint>`: what a checkpoint holds. */
import { readCheckpoint } from "@goldpan/sdk";
import { jsonLine, type Context } from "../context.js";

export function infoCommand(cmd: { checkpoint: string; json: boolean }, ctx: Context): number {
  const { configJson: _raw, ...info } = readCheckpoint(cmd.checkpoint);
  if (cmd.json) {
    ctx.stdout.write(jsonLine(info));
    return 0;
  }
  const config = Object.entries(info.config)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
    .join("\n");
  ctx.stdout.write(
    `${info.path}\n` +
      `model: ${info.model}  dataset: ${info.dataset}  epoch: ${info.epoch}  step: ${info.step}  ` +
      `params: ${info.paramCount.toLocaleString("en-US")}\n` +
      `config:\n${config}\n`,
  );
  return 0;
}
