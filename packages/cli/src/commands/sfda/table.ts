/** `goldpan sfda table`: run (or resume) the paper's digit table; progress per job on stderr, the
 * Markdown table (or, with --json, the table.json object) on stdout. */
import { join } from "node:path";
import {
  describeJob,
  parseTableOptions,
  runTable,
  tableMarkdown,
  type TableEvent,
} from "@goldpan/sfda";
import { jsonLine, type Context } from "../../context.js";
import { abortOnInterrupt } from "../../interrupt.js";
import { progressReporter, type ProgressReporter } from "../../progress.js";
import { sfdaError } from "./errors.js";

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

/** One line per job (its start, then its outcome), the job's own progress in between. */
export function tableProgress(ctx: Context): { onProgress: (e: TableEvent) => void; stop: () => void } {
  let reporter: ProgressReporter | undefined;
  const stop = (): void => {
    reporter?.stop();
    reporter = undefined;
  };
  const onProgress = (e: TableEvent): void => {
    switch (e.kind) {
      case "skip":
        ctx.stderr.write(`skipping ${e.pair}: ${e.reason}\n`);
        return;
      case "start":
        stop();
        ctx.stderr.write(`[${e.index}/${e.total}] ${describeJob(e.job)}\n`);
        reporter = progressReporter(ctx.stderr, { evaluation: e.job.stage === "source" ? "held-out" : "target test" });
        return;
      case "progress":
        reporter?.update(e.progress);
        return;
      case "source-done": {
        stop();
        const r = e.result;
        const head = e.cached ? `[${e.index}/${e.total}] ${describeJob(e.job)}: reused` : "  done";
        ctx.stderr.write(`${head}: held-out ${pct(r.bestValAccuracy)}, ${e.job.source} test ${pct(r.sourceTestAccuracy)}\n`);
        return;
      }
      case "adapt-done": {
        stop();
        const r = e.result;
        const head = e.cached ? `[${e.index}/${e.total}] ${describeJob(e.job)}: reused` : "  done";
        ctx.stderr.write(
          `${head}: target accuracy ${pct(r.before.accuracy)} → ${pct(r.after.accuracy)}, ` +
            `mutual information ${r.mutualInformationAfter.toFixed(4)}\n`,
        );
        return;
      }
    }
  };
  return { onProgress, stop };
}

export async function sfdaTableCommand(cmd: { options: Record<string, unknown>; json: boolean }, ctx: Context): Promise<number> {
  const options = parseTableOptions(cmd.options);
  const interrupt = abortOnInterrupt(ctx.stderr, "stopping the running job; finished ones are kept");
  const progress = tableProgress(ctx);
  try {
    const result = await runTable({ ...options, signal: interrupt.signal, onProgress: progress.onProgress });
    progress.stop();
    const out = result.config.out;
    if (cmd.json) ctx.stdout.write(jsonLine(result));
    else ctx.stdout.write(`${tableMarkdown(result)}\nwrote ${join(out, "table.md")} and ${join(out, "table.json")}\n`);
    return 0;
  } catch (e) {
    throw sfdaError(e, "finished jobs are kept: rerun the same command to continue");
  } finally {
    progress.stop();
    interrupt.dispose();
  }
}
