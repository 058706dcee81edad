/** `goldpan ntk <checkpoint>`: the empirical neural tangent kernel of a checkpoint; a table on stdout,
 * the kernel and its eigenvalues as `.npy` and the report as `ntk.json` in `--out`, phases on stderr. */
import { dirname, join, resolve } from "node:path";
import { ntk, parseNtkConfig, type NtkConfig, type NtkReport } from "@goldpan/sdk";
import { jsonLine, type Context } from "../context.js";
import { formatNtkAnalysis, runAnalysis } from "../progress.js";

/** `--out` as given, else `ntk/` beside the checkpoint. */
export function ntkOutDir(out: string | undefined, checkpoint: string): string {
  return out === undefined ? join(dirname(resolve(checkpoint)), "ntk") : resolve(out);
}

/** The table lists at most this many of the largest eigenvalues. */
export const NTK_TABLE_EIGENVALUES = 10;

/** Six significant digits, trailing zeros dropped. */
const g = (x: number): string => String(Number(x.toPrecision(6)));
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const row = (label: string, value: string): string => `  ${label.padEnd(13)}${value}`;

/** The eigenvalue rows: the dense spectrum's largest with the Lanczos top-k beside, or either alone. */
function eigenRows(r: NtkReport): string[] {
  const dense = r.minEigenvalue !== null;
  const top = r.topK ?? [];
  if (!dense && top.length === 0) return [];
  const lanczos = `Lanczos, ${r.topKProducts ?? 0} kernel–vector products`;
  const shown = Math.min(NTK_TABLE_EIGENVALUES, dense ? r.eigenvalues.length : top.length);
  const both = dense && top.length > 0;
  const head = dense
    ? `${r.eigenvalues.length} (dense); the largest ${shown}${both ? `, with the top ${top.length} by ${lanczos}` : ""}:`
    : `top ${top.length} by ${lanczos}${shown < top.length ? `; the largest ${shown}` : ""}:`;
  const values = dense ? r.eigenvalues : top;
  return [
    row("eigenvalues", head),
    `     #  ${"eigenvalue".padStart(12)}${both ? `  ${"Lanczos".padStart(12)}` : ""}`,
    ...values.slice(0, shown).map((v, i) => {
      const beside = both ? `  ${(i < top.length ? g(top[i]!) : "").padStart(12)}` : "";
      return `    ${String(i + 1).padStart(2)}  ${g(v).padStart(12)}${beside}`.trimEnd();
    }),
  ];
}

/** The report as a table: what the kernel is over, its trace and spectrum, Eq. 7's check, the files. */
export function formatNtkReport(r: NtkReport, config: Pick<NtkConfig, "split" | "precision">): string {
  const lines = [
    `NTK of ${r.model} over ${r.n} ${r.dataset} ${config.split} images (${r.kernel} kernel, ${r.method} method, ${config.precision})`,
    row("n", String(r.n)),
    row("classes", String(r.classes)),
    row("kernel", r.shape.length > 0 ? r.shape.join(" × ") : "not formed (matrix-free)"),
    row("parameters", r.parameters.toLocaleString("en-US")),
  ];
  if (r.trace !== null) lines.push(row("trace", g(r.trace)));
  lines.push(...eigenRows(r));
  if (r.minEigenvalue !== null) {
    lines.push(row("condition", r.condition === null ? "∞ (λmin ≤ 0)" : g(r.condition)), row("λmin", g(r.minEigenvalue)));
  }
  if (r.pdFraction !== null && r.pdFractionDiagonal !== null) {
    lines.push(row("PD blocks", `${pct(r.pdFraction)} of the ${r.classes}×${r.classes} blocks, ${pct(r.pdFractionDiagonal)} of the diagonal ones (Eq. 7)`));
  }
  r.files.forEach((f, i) => lines.push(row(i === 0 ? "files" : "", f)));
  lines.push(row("time", `${r.wallSec.toFixed(1)}s`), "");
  return lines.join("\n");
}

export async function ntkCommand(cmd: { config: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const parsed = parseNtkConfig(cmd.config);
  const config = { ...parsed, outDir: ntkOutDir(parsed.outDir, parsed.checkpoint) };
  if (!cmd.json) ctx.stderr.write(`computing the ${config.kernel} NTK of ${resolve(config.checkpoint)} → ${config.outDir}\n`);
  const report = await runAnalysis(ctx.stderr, "stopping after the current pass", formatNtkAnalysis, (opts) => ntk(config, opts));
  const { progressEvents: _events, ...result } = report;
  ctx.stdout.write(cmd.json ? jsonLine(result) : formatNtkReport(report, config));
  return 0;
}
