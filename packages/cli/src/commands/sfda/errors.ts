/** SFDA runs are not resumed with `goldpan train --resume`: their cancel errors say what to do instead. */
import { GoldpanError, normalizeError } from "@goldpan/sdk";

/**
 * `e` without the checkpoint that makes the CLI suggest `goldpan train --resume` (an SFDA model is
 * a result, not a run to resume), and with `hint` appended when it is a cancel.
 */
export function sfdaError(e: unknown, hint: string): GoldpanError {
  const g = normalizeError(e);
  if (g.checkpoint === undefined && g.code !== "E_CANCELLED") return g;
  const message = g.code === "E_CANCELLED" ? `${g.message}\n${hint}` : g.message;
  return new GoldpanError(g.code, message, { cause: g.cause ?? g, ...(g.issues === undefined ? {} : { issues: g.issues }) });
}
