/**
 * The engine of `goldpan sfda table`: the paper's digit table, rows = methods, columns = pairs,
 * each cell the target test accuracy after adaptation over seeds 0..N−1.
 *
 * For each seed, each source domain's model is trained once (`<out>/<source>-seed<k>/`) and every
 * method adapts it with the same seed (`<out>/<pair>-seed<k>/<method>/`). Each finished job leaves
 * its result (with the config it ran) as JSON — `source.json` beside `source.safetensors`,
 * `<method>.json` beside the method's folder — and a rerun with the same options reuses it, so an
 * interrupted table resumes where it stopped. The result is written as `table.json` and `table.md`.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { GoldpanError, dataDir, device, parseConfig, path, positiveInt, resolveDataDir, type Progress, type RunOptions } from "@goldpan/sdk";
import { z } from "zod";
import { METHODS, METHOD_LABELS, PulOptionsSchema, choice, type AdaptConfigInput, type Domain, type Method, type SourceConfigInput } from "./config.js";
import { PAPER_TABLE2, type PaperTable } from "./paper.js";
import { PAIRS, PAIR_NAMES, missingData, type PairName } from "./pairs.js";
import { tableJson, tableMarkdown } from "./render.js";
import type { AdaptResult, SourceResult } from "./results.js";
import { adapt, trainSource } from "./run.js";
import { percent, summarize, type Stat } from "./stats.js";

const list = <const T extends readonly [string, ...string[]]>(values: T, what: string) =>
  z.array(choice(values), { error: `must be a list of ${what}` }).min(1, { error: `must name at least one of ${values.join(", ")}` });

/** The table's options (the hooks — onProgress, signal, runner — apart). */
export const TableOptionsSchema = z.strictObject({
  seeds: positiveInt().default(3).describe("Seeds 0..N−1; each trains its own source models and adapts them with that seed."),
  pairs: list(PAIR_NAMES, "pairs")
    .default([...PAIR_NAMES])
    .describe("Columns: m2u (mnist→usps), u2m (usps→mnist), s2m (svhn→mnist; skipped without SVHN data)."),
  methods: list(METHODS, "methods").default([...METHODS]).describe("Rows: adaptation methods."),
  dataDir: dataDir(),
  out: path().default("runs/table").describe("Where models, per-job results, table.json and table.md go; rerunning resumes."),
  sourceEpochs: positiveInt().optional().describe("Source training epochs; default the core's (30)."),
  shotEpochs: positiveInt().optional().describe("Epochs of shot and shot-im; default the core's (30)."),
  adaptEpochs: positiveInt().optional().describe("Epochs of pul and kl-only; default the core's (2)."),
  trainLimit: positiveInt().optional().describe("Use only the first N training images of each domain (quick runs)."),
  testLimit: positiveInt().optional().describe("Use only the first N target test images (quick runs)."),
  device: device().optional().describe("Where to compute; default cpu."),
  pul: PulOptionsSchema.optional(),
});

export type TableOptions = z.output<typeof TableOptionsSchema>;
export type TableOptionsInput = z.input<typeof TableOptionsSchema>;

export function parseTableOptions(input: unknown): TableOptions {
  return parseConfig(TableOptionsSchema, input, "sfda table options");
}

/** How the table trains and adapts; tests inject a fake. */
export interface TableRunner {
  trainSource(config: SourceConfigInput, options: RunOptions): Promise<SourceResult>;
  adapt(config: AdaptConfigInput, options: RunOptions): Promise<AdaptResult>;
}

export const coreRunner: TableRunner = { trainSource, adapt };

export type TableJob =
  | { stage: "source"; source: Domain; seed: number }
  | { stage: "adapt"; pair: PairName; source: Domain; target: Domain; method: Method; seed: number };

/** Stage-level progress: which job runs (1-based `index` of `total`), its inner progress, its end. */
export type TableEvent =
  | { kind: "skip"; pair: PairName; reason: string }
  | { kind: "start"; job: TableJob; index: number; total: number }
  | { kind: "progress"; job: TableJob; index: number; total: number; progress: Progress }
  | { kind: "source-done"; job: TableJob & { stage: "source" }; index: number; total: number; cached: boolean; result: SourceResult }
  | { kind: "adapt-done"; job: TableJob & { stage: "adapt" }; index: number; total: number; cached: boolean; result: AdaptResult };

export interface TableHooks {
  onProgress?: (event: TableEvent) => void;
  /** Aborting stops the running job within a step; the rejection is `E_CANCELLED`, finished jobs stay cached. */
  signal?: AbortSignal;
  runner?: TableRunner;
}

export interface TableCell {
  /** Target test accuracy after adaptation, percent. */
  accuracy: Stat;
  /** Target test accuracy of the source model, percent. */
  before: Stat;
  /** Mutual information after adaptation on the target training split (nats): the label-free criterion. */
  criterion: Stat;
}

export interface TableRow {
  method: Method;
  label: string;
  /** Only pairs that ran. */
  cells: Partial<Record<PairName, TableCell>>;
}

export interface TableColumn {
  pair: PairName;
  label: string;
  source: Domain;
  target: Domain;
  /** Why it did not run, if it did not. */
  skipped?: string;
}

export interface TableResult {
  columns: TableColumn[];
  rows: TableRow[];
  seeds: number[];
  /** The paper's numbers, beside ours. */
  paper: PaperTable;
  /** The options the table ran with, paths absolute. */
  config: TableOptions & { dataDir: string; out: string };
  wallSec: number;
  /** How many jobs ran and how many were reused from an earlier run. */
  jobs: { ran: number; cached: number };
}

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** The JSON at `file` if it exists and was written for `config`, else undefined. */
function cached<R>(file: string, config: unknown): R | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as { config?: unknown; result?: R };
    return JSON.stringify(saved.config) === JSON.stringify(config) ? saved.result : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `text` through a temporary file, so a crash never leaves half a file behind. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

function epochsFor(method: Method, o: TableOptions): number | undefined {
  switch (method) {
    case "shot":
    case "shot-im":
      return o.shotEpochs;
    case "pul":
    case "kl-only":
      return o.adaptEpochs;
    case "none":
    case "adabn":
      return undefined;
  }
}

/** Drops undefined fields, so a config compares and caches as the JSON it is. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Runs (or resumes) the table and writes `table.json` and `table.md` into `out`. */
export async function runTable(options: TableOptionsInput & TableHooks = {}): Promise<TableResult> {
  const { onProgress, signal, runner = coreRunner, ...input } = options;
  const o = parseTableOptions(input);
  const dataDir = resolveDataDir(o.dataDir);
  const out = resolve(o.out);
  const started = performance.now();
  const emit = (e: TableEvent): void => onProgress?.(e);

  const pairs = unique(o.pairs);
  // Rows in the paper's order, whatever order they were asked in.
  const methods = METHODS.filter((m) => o.methods.includes(m));
  const seeds = Array.from({ length: o.seeds }, (_, k) => k);
  const columns: TableColumn[] = pairs.map((pair) => {
    const column: TableColumn = { pair, ...PAIRS[pair] };
    const skipped = missingData(pair, dataDir);
    if (skipped !== undefined) {
      column.skipped = skipped;
      emit({ kind: "skip", pair, reason: skipped });
    }
    return column;
  });
  const active = columns.filter((c) => c.skipped === undefined);
  const sources = unique(active.map((c) => c.source));
  const total = seeds.length * (sources.length + active.length * methods.length);
  let index = 0;
  const jobs = { ran: 0, cached: 0 };

  const run = async <R>(job: TableJob, start: (options: RunOptions) => Promise<R>): Promise<R> => {
    if (signal?.aborted) throw new GoldpanError("E_CANCELLED", `cancelled before ${describeJob(job)}`);
    const at = index;
    emit({ kind: "start", job, index: at, total });
    const runOptions: RunOptions = { onProgress: (progress) => emit({ kind: "progress", job, index: at, total, progress }) };
    if (signal !== undefined) runOptions.signal = signal;
    return start(runOptions);
  };

  const sourceModel = async (source: Domain, seed: number): Promise<SourceResult> => {
    index++;
    const job = { stage: "source", source, seed } as const;
    const dir = join(out, `${source}-seed${seed}`);
    const config: SourceConfigInput = defined({
      source,
      dataDir,
      seed,
      epochs: o.sourceEpochs,
      trainLimit: o.trainLimit,
      device: o.device,
      outDir: dir,
    });
    const file = join(dir, "source.json");
    let result = cached<SourceResult>(file, config);
    const hit = result !== undefined && existsSync(join(dir, "source.safetensors"));
    if (hit) jobs.cached++;
    else {
      result = await run(job, (ro) => runner.trainSource(config, ro));
      await mkdir(dir, { recursive: true });
      await writeAtomic(file, json({ config, result }));
      jobs.ran++;
    }
    emit({ kind: "source-done", job, index, total, cached: hit, result: result! });
    return result!;
  };

  const adaptation = async (pair: PairName, method: Method, seed: number, from: SourceResult): Promise<AdaptResult> => {
    index++;
    const { source, target } = PAIRS[pair];
    const job = { stage: "adapt", pair, source, target, method, seed } as const;
    const dir = join(out, `${pair}-seed${seed}`);
    const trains = method === "pul" || method === "kl-only";
    const config: AdaptConfigInput = defined({
      method,
      from: from.checkpoint ?? join(out, `${source}-seed${seed}`, "source.safetensors"),
      target,
      dataDir,
      seed,
      epochs: epochsFor(method, o),
      trainLimit: o.trainLimit,
      testLimit: o.testLimit,
      device: o.device,
      pul: trains ? o.pul : undefined,
      outDir: join(dir, method),
    });
    const file = join(dir, `${method}.json`);
    // The source model's hash is part of the key: a retrained source invalidates its adaptations.
    const key = { ...config, sourceWeightsHash: from.weightsHash };
    let result = cached<AdaptResult>(file, key);
    const hit = result !== undefined;
    if (hit) jobs.cached++;
    else {
      result = await run(job, (ro) => runner.adapt(config, ro));
      await mkdir(dir, { recursive: true });
      await writeAtomic(file, json({ config: key, result }));
      jobs.ran++;
    }
    emit({ kind: "adapt-done", job, index, total, cached: hit, result: result! });
    return result!;
  };

  const values = new Map<string, { accuracy: number[]; before: number[]; criterion: number[] }>();
  for (const seed of seeds) {
    const models = new Map<Domain, SourceResult>();
    for (const source of sources) models.set(source, await sourceModel(source, seed));
    for (const { pair, source } of active) {
      for (const method of methods) {
        const r = await adaptation(pair, method, seed, models.get(source)!);
        const key = `${method}/${pair}`;
        const v = values.get(key) ?? { accuracy: [], before: [], criterion: [] };
        v.accuracy.push(percent(r.after.accuracy));
        v.before.push(percent(r.before.accuracy));
        v.criterion.push(r.mutualInformationAfter);
        values.set(key, v);
      }
    }
  }

  const rows: TableRow[] = methods.map((method) => {
    const cells: Partial<Record<PairName, TableCell>> = {};
    for (const { pair } of active) {
      const v = values.get(`${method}/${pair}`)!;
      cells[pair] = { accuracy: summarize(v.accuracy), before: summarize(v.before), criterion: summarize(v.criterion) };
    }
    return { method, label: METHOD_LABELS[method], cells };
  });
  const result: TableResult = {
    columns,
    rows,
    seeds,
    paper: PAPER_TABLE2,
    config: { ...o, pairs, methods, dataDir, out },
    wallSec: (performance.now() - started) / 1000,
    jobs,
  };
  await mkdir(out, { recursive: true });
  await writeAtomic(join(out, "table.json"), tableJson(result));
  await writeAtomic(join(out, "table.md"), tableMarkdown(result));
  return result;
}

export function describeJob(job: TableJob): string {
  return job.stage === "source"
    ? `source training on ${job.source}, seed ${job.seed}`
    : `${job.method} on ${job.pair} (${job.source} → ${job.target}), seed ${job.seed}`;
}

export { tableJson, tableMarkdown };
