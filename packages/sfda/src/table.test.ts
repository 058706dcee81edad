/** runTable with a fake runner: jobs, configs, caching and resuming, skips, cancellation, files. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GoldpanError, type RunOptions } from "@goldpan/sdk";
import type { AdaptConfigInput, Method, SourceConfigInput } from "./config.js";
import type { AdaptResult, SourceResult } from "./results.js";
import { runTable, type TableEvent, type TableRunner } from "./table.js";

const root = mkdtempSync(join(tmpdir(), "goldpan-sfda-table-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (label: string): string => join(root, `${label}-${n++}`);

/** Target accuracy after each method, before seed offsets. */
const AFTER: Record<Method, number> = { none: 0.7, adabn: 0.75, "kl-only": 0.72, pul: 0.9, "shot-im": 0.85, shot: 0.88 };

/** A runner that trains nothing: it records its calls and writes the checkpoints' names. */
function fakeRunner(options: { onAdapt?: (config: AdaptConfigInput, run: RunOptions) => void } = {}) {
  const sources: SourceConfigInput[] = [];
  const adapts: AdaptConfigInput[] = [];
  const runner: TableRunner = {
    async trainSource(config, run) {
      sources.push(config);
      run.onProgress?.({ kind: "epoch", epoch: 1, epochs: 1, step: 1, stepInEpoch: 1, stepsPerEpoch: 1, loss: 1, accuracy: 0.5, imagesPerSec: 1, elapsedSec: 0 });
      const checkpoint = join(config.outDir!, "source.safetensors");
      mkdirSync(config.outDir!, { recursive: true });
      writeFileSync(checkpoint, "weights");
      const r: SourceResult = {
        checkpoint,
        bestEpoch: 1,
        bestValAccuracy: 0.9,
        valAccuracy: [0.9],
        sourceTestAccuracy: 0.95,
        trainSize: 9,
        valSize: 1,
        steps: 1,
        wallSec: 0,
        weightsHash: `${config.source}-${config.seed}-${config.epochs ?? "default"}`,
        progressEvents: 1,
      };
      return r;
    },
    async adapt(config, run) {
      adapts.push(config);
      options.onAdapt?.(config, run);
      const seed = config.seed ?? 0;
      const r: AdaptResult = {
        method: config.method,
        before: { count: 10, loss: 1, accuracy: 0.7, wallSec: 0 },
        after: { count: 10, loss: 1, accuracy: AFTER[config.method] + seed / 100, wallSec: 0 },
        epochAccuracy: [],
        mutualInformationBefore: 1,
        mutualInformationAfter: 1 + seed / 10,
        epochs: config.epochs ?? 0,
        steps: 0,
        wallSec: 0,
        checkpoint: null,
        weightsHash: "h",
        progressEvents: 0,
      };
      return r;
    },
  };
  return { runner, sources, adapts };
}

const dataDir = (svhn: boolean): string => {
  const d = fresh("data");
  mkdirSync(join(d, "svhn"), { recursive: true });
  if (svhn) for (const f of ["train_32x32.mat", "test_32x32.mat"]) writeFileSync(join(d, "svhn", f), "");
  return d;
};

describe("runTable", () => {
  it("trains each source once per seed, adapts with every method, and summarizes in percent", async () => {
    const out = fresh("out");
    const { runner, sources, adapts } = fakeRunner();
    const events: TableEvent[] = [];
    const data = dataDir(false);
    const r = await runTable({ seeds: 2, out, dataDir: data, runner, onProgress: (e) => events.push(e), sourceEpochs: 4, adaptEpochs: 1, shotEpochs: 3, trainLimit: 300, testLimit: 200 });

    // m2u and u2m need an mnist and a usps source model per seed; s2m is skipped without SVHN.
    expect(sources.map((s) => `${s.source}/${s.seed}`)).toEqual(["mnist/0", "usps/0", "mnist/1", "usps/1"]);
    expect(sources[0]).toEqual({ source: "mnist", dataDir: data, seed: 0, epochs: 4, trainLimit: 300, outDir: join(out, "mnist-seed0") });
    expect(adapts).toHaveLength(2 * 2 * 6);
    const pul = adapts.find((a) => a.method === "pul" && a.target === "usps" && a.seed === 1)!;
    expect(pul).toEqual({
      method: "pul",
      from: join(out, "mnist-seed1", "source.safetensors"),
      target: "usps",
      dataDir: data,
      seed: 1,
      epochs: 1,
      trainLimit: 300,
      testLimit: 200,
      outDir: join(out, "m2u-seed1", "pul"),
    });
    // shot and shot-im get --shot-epochs, none and adabn no epochs at all.
    expect(adapts.find((a) => a.method === "shot")!.epochs).toBe(3);
    expect(adapts.find((a) => a.method === "shot-im")!.epochs).toBe(3);
    expect(adapts.find((a) => a.method === "none")).not.toHaveProperty("epochs");
    expect(adapts.find((a) => a.method === "adabn")).not.toHaveProperty("epochs");

    expect(r.columns).toEqual([
      { pair: "m2u", source: "mnist", target: "usps", label: "M→U" },
      { pair: "u2m", source: "usps", target: "mnist", label: "U→M" },
      { pair: "s2m", source: "svhn", target: "mnist", label: "S→M", skipped: `SVHN not present in ${join(data, "svhn")}` },
    ]);
    expect(r.rows.map((row) => row.label)).toEqual(["Source only", "AdaBN", "KL-only", "PUL", "SHOT-IM", "SHOT"]);
    const cell = r.rows.find((row) => row.method === "pul")!.cells.m2u!;
    // Seeds 0 and 1: 90 and 91 %, mean 90.5, sample std √0.5.
    expect(cell.accuracy).toEqual({ mean: 90.5, std: Math.SQRT1_2, values: [90, 91] });
    expect(cell.before).toEqual({ mean: 70, std: 0, values: [70, 70] });
    expect(cell.criterion.values).toEqual([1, 1.1]);
    expect(r.rows[0]!.cells).not.toHaveProperty("s2m");
    expect(r.seeds).toEqual([0, 1]);
    expect(r.paper.rows.pul).toEqual({ m2u: 91.35, s2m: 78.02, u2m: 91.53 });
    expect(r.jobs).toEqual({ ran: 28, cached: 0 });
    expect(r.config).toMatchObject({ seeds: 2, out, dataDir: data, pairs: ["m2u", "u2m", "s2m"] });

    // Events: the skip first, then start/…/done for each of the 28 jobs, in order.
    expect(events[0]).toEqual({ kind: "skip", pair: "s2m", reason: `SVHN not present in ${join(data, "svhn")}` });
    const starts = events.filter((e) => e.kind === "start");
    expect(starts.map((e) => e.index)).toEqual(Array.from({ length: 28 }, (_, i) => i + 1));
    expect(starts.every((e) => e.total === 28)).toBe(true);
    expect(events.find((e) => e.kind === "progress")).toMatchObject({ index: 1, job: { stage: "source", source: "mnist", seed: 0 } });
    expect(events.at(-1)).toMatchObject({ kind: "adapt-done", index: 28, cached: false, job: { pair: "u2m", method: "shot", seed: 1 } });

    // Both files are written.
    expect(JSON.parse(readFileSync(join(out, "table.json"), "utf8"))).toEqual(JSON.parse(JSON.stringify(r)));
    expect(readFileSync(join(out, "table.md"), "utf8")).toContain("| PUL | 90.50 ± 0.71 | 90.50 ± 0.71 | skipped |");
  });

  it("runs s2m from an SVHN source when the data is there", async () => {
    const { runner, sources, adapts } = fakeRunner();
    const r = await runTable({ seeds: 1, pairs: ["s2m"], methods: ["pul"], out: fresh("out"), dataDir: dataDir(true), runner });
    expect(sources.map((s) => s.source)).toEqual(["svhn"]);
    expect(adapts.map((a) => `${a.method} ${a.target}`)).toEqual(["pul mnist"]);
    expect(r.columns[0]).not.toHaveProperty("skipped");
    expect(r.rows[0]!.cells.s2m!.accuracy.values).toEqual([90]);
  });

  it("reuses finished jobs on a rerun, and reruns only what an option change touches", async () => {
    const out = fresh("out");
    const data = dataDir(false);
    const options = { seeds: 1, pairs: ["m2u"] as const, methods: ["none", "pul", "shot"] as ("none" | "pul" | "shot")[], out, dataDir: data };
    const first = fakeRunner();
    const a = await runTable({ ...options, pairs: [...options.pairs], runner: first.runner });
    expect([first.sources.length, first.adapts.length]).toEqual([1, 3]);

    const second = fakeRunner();
    const events: TableEvent[] = [];
    const b = await runTable({ ...options, pairs: [...options.pairs], runner: second.runner, onProgress: (e) => events.push(e) });
    expect([second.sources.length, second.adapts.length]).toEqual([0, 0]);
    expect(b.jobs).toEqual({ ran: 0, cached: 4 });
    expect(b.rows).toEqual(a.rows);
    expect(events.filter((e) => e.kind === "start")).toEqual([]);
    expect(events.filter((e) => e.kind === "adapt-done" || e.kind === "source-done").every((e) => "cached" in e && e.cached)).toBe(true);

    // PUL's own epochs changed: only PUL runs again.
    const third = fakeRunner();
    await runTable({ ...options, pairs: [...options.pairs], adaptEpochs: 1, runner: third.runner });
    expect(third.sources).toEqual([]);
    expect(third.adapts.map((x) => x.method)).toEqual(["pul"]);

    // A method added later runs alone.
    const fourth = fakeRunner();
    await runTable({ ...options, pairs: [...options.pairs], methods: ["none", "adabn"], runner: fourth.runner });
    expect(fourth.adapts.map((x) => x.method)).toEqual(["adabn"]);

    // The source model retrained (other epochs): every adaptation of it is stale.
    const fifth = fakeRunner();
    await runTable({ ...options, pairs: [...options.pairs], sourceEpochs: 2, runner: fifth.runner });
    expect(fifth.sources).toHaveLength(1);
    expect(fifth.adapts.map((x) => x.method)).toEqual(["none", "pul", "shot"]);
  });

  it("does not reuse a source model whose training never finished", async () => {
    const out = fresh("out");
    const options = { seeds: 1, pairs: ["m2u" as const], methods: ["none" as const], out, dataDir: dataDir(false) };
    // A checkpoint without source.json: training was interrupted after an epoch.
    mkdirSync(join(out, "mnist-seed0"), { recursive: true });
    writeFileSync(join(out, "mnist-seed0", "source.safetensors"), "partial");
    const first = fakeRunner();
    await runTable({ ...options, runner: first.runner });
    expect(first.sources).toHaveLength(1);
    expect(existsSync(join(out, "mnist-seed0", "source.json"))).toBe(true);
    expect(existsSync(join(out, "m2u-seed0", "none.json"))).toBe(true);
    // source.json without its checkpoint is not reused either.
    rmSync(join(out, "mnist-seed0", "source.safetensors"));
    const second = fakeRunner();
    await runTable({ ...options, runner: second.runner });
    expect(second.sources).toHaveLength(1);
  });

  it("passes PUL options only to pul and kl-only", async () => {
    const { runner, adapts } = fakeRunner();
    await runTable({ seeds: 1, pairs: ["m2u"], methods: ["kl-only", "pul", "shot"], pul: { lambda: 0.5 }, out: fresh("out"), dataDir: dataDir(false), runner });
    expect(adapts.map((a) => [a.method, a.pul])).toEqual([
      ["kl-only", { lambda: 0.5 }],
      ["pul", { lambda: 0.5 }],
      ["shot", undefined],
    ]);
  });

  it("stops with E_CANCELLED when aborted, keeping what finished for the rerun", async () => {
    const out = fresh("out");
    const ac = new AbortController();
    const data = dataDir(false);
    const { runner } = fakeRunner({
      onAdapt: (config, run) => {
        expect(run.signal).toBe(ac.signal);
        if (config.method === "pul") ac.abort();
      },
    });
    const options = { seeds: 1, pairs: ["m2u" as const], methods: ["none" as const, "pul" as const, "shot" as const], out, dataDir: data };
    const e = await runTable({ ...options, runner, signal: ac.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GoldpanError);
    expect(e).toMatchObject({ code: "E_CANCELLED", message: "cancelled before shot on m2u (mnist → usps), seed 0" });
    expect(existsSync(join(out, "table.md"))).toBe(false);
    const rerun = fakeRunner();
    const r = await runTable({ ...options, runner: rerun.runner });
    expect(rerun.adapts.map((a) => a.method)).toEqual(["shot"]);
    expect(r.jobs).toEqual({ ran: 1, cached: 3 });
  });

  it("validates its options, listing every problem", async () => {
    const e = await runTable({ seeds: 0, pairs: ["m2u", "x2y"], methods: [], out: "", trainLimit: -1 } as never).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "E_CONFIG" });
    expect((e as GoldpanError).issues!.map((i) => [i.path.join("."), i.message])).toEqual([
      ["seeds", "must be ≥ 1"],
      ["pairs.1", '"x2y" is not one of m2u, u2m, s2m'],
      ["methods", "must name at least one of none, adabn, kl-only, pul, shot-im, shot"],
      ["out", "must not be empty"],
      ["trainLimit", "must be ≥ 1"],
    ]);
  });
});
