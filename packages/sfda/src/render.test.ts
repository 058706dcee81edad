import { describe, expect, it } from "vitest";
import { PAPER_TABLE2 } from "./paper.js";
import { formatStat, tableJson, tableMarkdown } from "./render.js";
import { summarize } from "./stats.js";
import type { TableResult } from "./table.js";

const cell = (accuracy: number[], criterion: number[]) => ({ accuracy: summarize(accuracy), before: summarize([70, 70]), criterion: summarize(criterion) });

const result: TableResult = {
  columns: [
    { pair: "m2u", source: "mnist", target: "usps", label: "M→U" },
    { pair: "s2m", source: "svhn", target: "mnist", label: "S→M", skipped: "SVHN not present in /d/svhn" },
    { pair: "u2m", source: "usps", target: "mnist", label: "U→M" },
  ],
  rows: [
    { method: "none", label: "Source only", cells: { m2u: cell([77.5, 80.5], [1, 1.2]), u2m: cell([89, 89], [2, 2]) } },
    { method: "pul", label: "PUL", cells: { m2u: cell([91, 92], [1.5, 1.6]), u2m: cell([91.5, 91.25], [2.1, 2.3]) } },
  ],
  seeds: [0, 1],
  paper: PAPER_TABLE2,
  config: { seeds: 2, pairs: ["m2u", "s2m", "u2m"], methods: ["none", "pul"], out: "/o", dataDir: "/d", adaptEpochs: 1, trainLimit: 300 },
  wallSec: 12.34,
  jobs: { ran: 6, cached: 2 },
};

describe("tableMarkdown", () => {
  const md = tableMarkdown(result);
  const lines = md.split("\n");

  it("has a row per method with mean ± std per pair and the paper's rows beside", () => {
    const start = lines.indexOf("| Method | M→U | S→M | U→M |");
    expect(start).toBeGreaterThan(0);
    expect(lines.slice(start, start + 6)).toEqual([
      "| Method | M→U | S→M | U→M |",
      "| :-- | --: | --: | --: |",
      // 77.5, 80.5: mean 79, sample std √4.5 = 2.1213…
      "| Source only | 79.00 ± 2.12 | skipped | 89.00 ± 0.00 |",
      "| *Source only (paper)* | *77.22* | *73.85* | *89.10* |",
      "| PUL | 91.50 ± 0.71 | skipped | 91.38 ± 0.18 |",
      "| *PUL (paper)* | *91.35* | *78.02* | *91.53* |",
    ]);
  });

  it("says what was skipped and why, what the numbers are, and how the table ran", () => {
    expect(md).toContain("Skipped S→M: SVHN not present in /d/svhn.");
    expect(md).toContain("over seeds 0, 1 (n = 2)");
    expect(md).toContain("Target labels are used for nothing but these test accuracies.");
    expect(md).toContain("6 jobs ran, 2 reused; 12.3 s. Options: pul/kl-only epochs 1, train limit 300. Data: /d.");
  });

  it("adds the criterion table and the values of each seed", () => {
    expect(md).toContain("## Label-free criterion: mutual information after adaptation (nats)");
    expect(md).toContain("| PUL | 1.550 ± 0.071 | skipped | 2.200 ± 0.141 |");
    expect(md).not.toContain("*PUL (paper)* | *91.35* | *78.02* | *91.53* |\n| SHOT");
    const seeds = lines.indexOf("| Method | Pair | seed 0 | seed 1 |");
    expect(lines.slice(seeds + 2, seeds + 6)).toEqual([
      "| Source only | M→U | 77.50 | 80.50 |",
      "| Source only | U→M | 89.00 | 89.00 |",
      "| PUL | M→U | 91.00 | 92.00 |",
      "| PUL | U→M | 91.50 | 91.25 |",
    ]);
  });

  it("keeps the paper's rows when their methods did not run", () => {
    const only = tableMarkdown({ ...result, rows: [{ method: "adabn", label: "AdaBN", cells: { m2u: cell([75], [1]), u2m: cell([88], [2]) } }], seeds: [0] });
    expect(only).toContain("| AdaBN | 75.00 ± 0.00 | skipped | 88.00 ± 0.00 |\n| *Source only (paper)* | *77.22* | *73.85* | *89.10* |\n| *PUL (paper)* |");
    expect(only).toContain("over seed 0 (n = 1)");
  });
});

describe("formatStat and tableJson", () => {
  it("formats and serializes", () => {
    expect(formatStat({ mean: 91.346, std: 0.4049, values: [] })).toBe("91.35 ± 0.40");
    expect(formatStat({ mean: Number.NaN, std: 0, values: [] })).toBe("n/a ± 0.00");
    expect(JSON.parse(tableJson(result))).toEqual(result);
    expect(tableJson(result).endsWith("}\n")).toBe(true);
  });
});
