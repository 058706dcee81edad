/** The table as Markdown (rows = methods, columns = pairs, the paper's rows beside) and as JSON. */
import { METHOD_LABELS, type Method } from "./config.js";
import type { Stat } from "./stats.js";
import type { TableColumn, TableResult, TableRow } from "./table.js";

const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");

/** `91.35 ± 0.42`. */
export function formatStat(s: Stat, digits = 2): string {
  return `${fixed(s.mean, digits)} ± ${fixed(s.std, digits)}`;
}

function markdownTable(header: readonly string[], align: readonly ("l" | "r")[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(align.map((a) => (a === "l" ? ":--" : "--:"))), ...rows.map(line)].join("\n");
}

function statTable(result: TableResult, stat: (row: TableRow, column: TableColumn) => Stat | undefined, digits: number, paper: boolean): string {
  const { columns } = result;
  const rows: string[][] = [];
  const paperRow = (method: Method): string[] | undefined => {
    const numbers = result.paper.rows[method];
    if (!paper || numbers === undefined) return undefined;
    return [`*${METHOD_LABELS[method]} (paper)*`, ...columns.map((c) => `*${numbers[c.pair].toFixed(2)}*`)];
  };
  for (const row of result.rows) {
    rows.push([
      row.label,
      ...columns.map((c) => {
        if (c.skipped !== undefined) return "skipped";
        const s = stat(row, c);
        return s === undefined ? "—" : formatStat(s, digits);
      }),
    ]);
    const p = paperRow(row.method);
    if (p !== undefined) rows.push(p);
  }
  // The paper's rows for methods this run left out, at the end.
  for (const method of Object.keys(result.paper.rows) as Method[]) {
    if (result.rows.some((r) => r.method === method)) continue;
    const p = paperRow(method);
    if (p !== undefined) rows.push(p);
  }
  return markdownTable(["Method", ...columns.map((c) => c.label)], ["l", ...columns.map(() => "r" as const)], rows);
}

function seedList(seeds: readonly number[]): string {
  return seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds.join(", ")}`;
}

/** The table as Markdown: accuracy with the paper's rows, the label-free criterion, the values per seed. */
export function tableMarkdown(result: TableResult): string {
  const ran = result.columns.filter((c) => c.skipped === undefined);
  const parts = [
    "# Source-free domain adaptation on digits: target test accuracy (%)",
    `Mean ± sample standard deviation over ${seedList(result.seeds)} (n = ${result.seeds.length}). ` +
      "Target labels are used for nothing but these test accuracies. " +
      `Paper rows (italic): ${result.paper.title}; ${result.paper.networks}.`,
    statTable(result, (row, c) => row.cells[c.pair]?.accuracy, 2, true),
  ];
  const skipped = result.columns.filter((c) => c.skipped !== undefined);
  if (skipped.length > 0) parts.push(skipped.map((c) => `Skipped ${c.label}: ${c.skipped}.`).join("\n"));
  if (ran.length > 0) {
    parts.push(
      "## Label-free criterion: mutual information after adaptation (nats)",
      "On the target training split, without labels: H(mean prediction) − mean H(prediction).",
      statTable(result, (row, c) => row.cells[c.pair]?.criterion, 3, false),
      "## Target test accuracy (%) per seed",
      markdownTable(
        ["Method", "Pair", ...result.seeds.map((s) => `seed ${s}`)],
        ["l", "l", ...result.seeds.map(() => "r" as const)],
        result.rows.flatMap((row) =>
          ran.map((c) => [row.label, c.label, ...(row.cells[c.pair]?.accuracy.values ?? []).map((v) => fixed(v, 2))]),
        ),
      ),
    );
  }
  const c = result.config;
  const options = [
    c.sourceEpochs === undefined ? undefined : `source epochs ${c.sourceEpochs}`,
    c.adaptEpochs === undefined ? undefined : `pul/kl-only epochs ${c.adaptEpochs}`,
    c.shotEpochs === undefined ? undefined : `shot/shot-im epochs ${c.shotEpochs}`,
    c.trainLimit === undefined ? undefined : `train limit ${c.trainLimit}`,
    c.testLimit === undefined ? undefined : `test limit ${c.testLimit}`,
  ].filter((x) => x !== undefined);
  parts.push(
    `${result.jobs.ran} jobs ran, ${result.jobs.cached} reused; ${result.wallSec.toFixed(1)} s. ` +
      `Options: ${options.length === 0 ? "the core's defaults (SHOT's and the paper's)" : options.join(", ")}. Data: ${c.dataDir}.`,
  );
  return `${parts.join("\n\n")}\n`;
}

/** The table as pretty-printed JSON (what `table.json` holds). */
export function tableJson(result: TableResult): string {
  return `${JSON.stringify(result, null, 2)}\n`;
}
