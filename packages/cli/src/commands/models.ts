/** `goldpan models`: the model registry. */
import { listModels } from "@goldpan/sdk";
import { jsonLine, type Context } from "../context.js";

export function modelsCommand(cmd: { json: boolean }, ctx: Context): number {
  const models = listModels();
  if (cmd.json) {
    ctx.stdout.write(jsonLine(models));
    return 0;
  }
  const rows = models.map((m) => [m.name, m.paramCount.toLocaleString("en-US"), m.inputShape.join("×"), String(m.classes), m.description]);
  const header = ["model", "params", "input", "classes", "description"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ");
  ctx.stdout.write(`${[header, ...rows].map(line).join("\n")}\n`);
  return 0;
}
