/** `goldpan hessian <checkpoint>`: top eigenvalues, trace and density of the loss Hessian; a summary
 * on stdout, the full report as JSON in a file, progress (products, phase) on stderr. */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { hessian, parseHessianConfig, type HessianReport } from "@goldpan/sdk";
import { HESSIAN_TOP_K } from "../args.js";
import { jsonLine, type Context } from "../context.js";
import { runAnalysis } from "../progress.js";

/** `--out`: a `.json` file as given, else a directory holding `hessian.json`; by default the
 * checkpoint's directory. */
export function reportPath(out: string | undefined, checkpoint: string): string {
  if (out === undefined) return join(dirname(resolve(checkpoint)), "hessian.json");
  return out.endsWith(".json") ? resolve(out) : join(resolve(out), "hessian.json");
}

/** Six significant digits, trailing zeros dropped. */
const g = (x: number): string => String(Number(x.toPrecision(6)));
const sec = (x: number): string => `${x.toFixed(1)}s`;

/** The report as a few readable lines: loss and gradient, then each analysis that was run. */
export function formatHessianReport(r: HessianReport, precision: string, path: string): string {
  const lines = [
    `Hessian of ${r.model} (${r.parameters.toLocaleString("en-US")} parameters) over ${r.samples} ${r.dataset} ${r.split} images ` +
      `(${r.labels} labels, ${r.mode} mode, ${precision})`,
    `  loss ${g(r.loss)}  ‖g‖ ${g(r.gradNorm)}`,
  ];
  if (r.eigen !== null) {
    const e = r.eigen;
    lines.push(
      `  top ${e.values.length} eigenvalue${e.values.length === 1 ? "" : "s"} (Lanczos, ${e.products} products, ${e.converged ? "converged" : "not converged"}):`,
      `     #  ${"eigenvalue".padStart(12)}  ${"residual".padStart(9)}`,
      ...e.values.map((v, i) => `    ${String(i + 1).padStart(2)}  ${g(v).padStart(12)}  ${e.residuals[i]!.toExponential(2).padStart(9)}`),
    );
  }
  if (r.trace !== null) {
    lines.push(`  trace ${g(r.trace.estimate)} ± ${g(r.trace.stdError)} (Hutchinson, ${r.trace.samples} samples)`);
  }
  if (r.density !== null) {
    const nodes = r.density.nodes.flat();
    const runs = r.density.nodes.length;
    lines.push(
      `  density support [${g(Math.min(...nodes))}, ${g(Math.max(...nodes))}], ${nodes.length} nodes ` +
        `(stochastic Lanczos quadrature, ${runs} run${runs === 1 ? "" : "s"}, ${r.density.products} products)`,
    );
  }
  lines.push(`  ${r.products} Hessian–vector products in ${sec(r.wallSec)}`, `  report: ${path}`, "");
  return lines.join("\n");
}

export async function hessianCommand(cmd: { config: Record<string, unknown>; out?: string; json: boolean }, ctx: Context): Promise<number> {
  const config = parseHessianConfig({ topK: HESSIAN_TOP_K, ...cmd.config });
  const path = reportPath(cmd.out, config.checkpoint);
  if (!cmd.json) ctx.stderr.write(`analysing the Hessian of ${resolve(config.checkpoint)} → ${path}\n`);
  const report = await runAnalysis(ctx.stderr, "stopping after the current Hessian–vector product", undefined, (opts) => hessian(config, opts));
  const { progressEvents: _events, ...result } = report;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify({ ...result, config: { ...config, checkpoint: resolve(config.checkpoint) } }, null, 2)}\n`);
  ctx.stdout.write(cmd.json ? jsonLine({ ...result, report: path }) : formatHessianReport(report, config.precision, path));
  return 0;
}
