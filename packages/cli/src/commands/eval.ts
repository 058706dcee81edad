/** `goldpan eval <checkpoint>`: loss and accuracy on a split. */
import { evaluate, parseEvalConfig } from "@goldpan/sdk";
import { jsonLine, type Context } from "../context.js";
import { abortOnInterrupt } from "../interrupt.js";

export async function evalCommand(cmd: { config: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const config = parseEvalConfig(cmd.config);
  const interrupt = abortOnInterrupt(ctx.stderr);
  try {
    const r = await evaluate(config, { signal: interrupt.signal });
    if (cmd.json) ctx.stdout.write(jsonLine(r));
    else {
      ctx.stdout.write(
        `${r.model} on ${r.dataset} ${r.split} (${r.count} images): ` +
          `accuracy ${(r.accuracy * 100).toFixed(2)}%  loss ${r.loss.toFixed(4)}  (${r.wallSec.toFixed(1)}s)\n`,
      );
    }
    return 0;
  } finally {
    interrupt.dispose();
  }
}
