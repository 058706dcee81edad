/** SFDA through the built addon: @goldpan/sfda and `goldpan sfda` on the bundled MNIST and USPS
 * subsets — source → adapt, determinism, errors, cancellation, Ctrl-C, the table. */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type * as Binding from "@goldpan/binding";
import { EXIT_CODES } from "@goldpan/cli";
import { adapt, evaluate, trainSource, type AdaptResult, type Progress, type SourceResult } from "@goldpan/sfda";
import { runCli, tempDir, rejection, interruptCli } from "./helpers.js";

/** Small enough for a few seconds per run on two cores. */
const SOURCE = { source: "mnist", epochs: 1, trainLimit: 300 } as const;
const TARGET = { target: "usps", epochs: 1, trainLimit: 300, testLimit: 200 } as const;
const limits = ["--epochs", "1", "--train-limit", "300"];


let shared: Promise<SourceResult> | undefined;
/** One small source model, trained once for the tests that only adapt it. */
function sourceModel(): Promise<SourceResult> {
  shared ??= trainSource({ ...SOURCE, outDir: tempDir("sfda-source") });
  return shared;
}

describe("@goldpan/sfda over the addon", () => {
  it("trains a source model, adapts it with PUL and SHOT, and `goldpan eval` reads the adapted model", async () => {
    const out = tempDir("sfda");
    const sourceEvents: Progress[] = [];
    const src = await trainSource({ ...SOURCE, outDir: out, progressEvery: 1 }, { onProgress: (p) => sourceEvents.push(p) });
    expect(src).toMatchObject({ bestEpoch: 1, trainSize: 270, valSize: 30, steps: 5, checkpoint: join(out, "source.safetensors") });
    expect(src.valAccuracy).toHaveLength(1);
    expect(src.bestValAccuracy).toBe(src.valAccuracy[0]);
    for (const x of [src.sourceTestAccuracy, src.bestValAccuracy]) expect(x).toBeGreaterThan(0.1);
    expect(src.weightsHash).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(src.checkpoint!)).toBe(true);
    // Every event the core sent arrived before the promise resolved.
    expect(sourceEvents).toHaveLength(src.progressEvents);
    expect(sourceEvents.at(-1)).toMatchObject({ kind: "epoch", epoch: 1, testAccuracy: src.valAccuracy[0] });

    const results: Record<string, AdaptResult> = {};
    for (const method of ["pul", "shot"] as const) {
      const events: Progress[] = [];
      const r = await adapt({ ...TARGET, method, from: src.checkpoint!, outDir: join(out, method), progressEvery: 1 }, { onProgress: (p) => events.push(p) });
      results[method] = r;
      expect(r).toMatchObject({ method, epochs: 1, steps: 5, checkpoint: join(out, method, "adapted.safetensors") });
      expect(r.before).toMatchObject({ count: 200 });
      expect(r.after).toMatchObject({ count: 200 });
      expect(r.epochAccuracy).toEqual([r.after.accuracy]);
      for (const x of [r.before.accuracy, r.after.accuracy, r.mutualInformationBefore, r.mutualInformationAfter]) expect(Number.isFinite(x)).toBe(true);
      expect(r.weightsHash).toMatch(/^[0-9a-f]{64}$/);
      expect(existsSync(r.checkpoint!)).toBe(true);
      // Adaptation has no training accuracy: the core sends NaN and JS gets NaN, not an error.
      expect(events).toHaveLength(r.progressEvents);
      const steps = events.filter((e) => e.kind === "step");
      expect(steps).toHaveLength(5);
      expect(steps.every((e) => Number.isNaN(e.accuracy) && Number.isFinite(e.loss))).toBe(true);
      const epoch = events.at(-1)!;
      expect(epoch.kind).toBe("epoch");
      expect(epoch.loss).toBeNaN();
      expect(epoch.testAccuracy).toBe(r.after.accuracy);
    }
    // Both start from the same source model on the same target test images.
    expect(results.pul!.before).toMatchObject({ accuracy: results.shot!.before.accuracy, loss: results.shot!.before.loss });
    expect(results.pul!.weightsHash).not.toBe(results.shot!.weightsHash);

    // The adapted model is an ordinary checkpoint of the target domain.
    const ev = await runCli(["eval", results.pul!.checkpoint!, "--limit", "200", "--json"]);
    expect(ev.code, ev.stderr).toBe(0);
    const r = JSON.parse(ev.stdout) as { model: string; dataset: string; count: number; accuracy: number };
    expect(r).toMatchObject({ model: "lenet-base", dataset: "usps", split: "test", count: 200 });
    expect(r.accuracy).toBeCloseTo(results.pul!.after.accuracy, 6);
    const sdkEval = await evaluate({ checkpoint: src.checkpoint!, limit: 100 });
    expect(sdkEval).toMatchObject({ model: "lenet-base", dataset: "mnist", count: 100 });
  });

  it("is deterministic: same seed, same weights; another seed, other weights", async () => {
    const [a, b, c] = [
      await trainSource({ ...SOURCE, trainLimit: 200, seed: 3 }),
      await trainSource({ ...SOURCE, trainLimit: 200, seed: 3 }),
      await trainSource({ ...SOURCE, trainLimit: 200, seed: 4 }),
    ];
    expect(a.weightsHash).toBe(b.weightsHash);
    expect(a.valAccuracy).toEqual(b.valAccuracy);
    expect(c.weightsHash).not.toBe(a.weightsHash);

    const from = (await sourceModel()).checkpoint!;
    const pul = { ...TARGET, trainLimit: 200, method: "pul", from } as const;
    const [x, y, z] = [await adapt({ ...pul, seed: 1 }), await adapt({ ...pul, seed: 1 }), await adapt({ ...pul, seed: 2 })];
    expect(x.weightsHash).toBe(y.weightsHash);
    expect(x.after).toEqual({ ...y.after, wallSec: x.after.wallSec });
    expect(z.weightsHash).not.toBe(x.weightsHash);
  });

  it("reports bad configs as E_CONFIG: every field from the schema, the field from the addon", async () => {
    const err = await rejection(adapt({ method: "foo", target: "cifar", from: "x", pul: { attach: "head" } } as never));
    expect(err.code).toBe("E_CONFIG");
    expect(err.issues!.map((i) => i.path.join(".")).sort()).toEqual(["method", "pul.attach", "target"]);
    expect((await rejection(trainSource({ source: "cifar" } as never))).code).toBe("E_CONFIG");

    // Straight to the addon, past the schema: serde names the field; the core's own checks too.
    const binding = createRequire(import.meta.url)("@goldpan/binding") as typeof Binding;
    const direct = (config: Record<string, unknown>) =>
      binding.sfdaAdapt(config).then(
        () => expect.unreachable(),
        (e: unknown) => e as Error & { code: string },
      );
    expect(await direct({ method: "foo", target: "usps" })).toMatchObject({ code: "E_CONFIG", message: expect.stringMatching(/^invalid config: method: unknown variant `foo`/) });
    expect(await direct({ method: "pul", target: "usps", pul: { attach: 3 } })).toMatchObject({ code: "E_CONFIG", message: expect.stringMatching(/^invalid config: pul\.attach: /) });
    expect(await direct({ method: "pul", metod: "x" })).toMatchObject({ code: "E_CONFIG", message: "invalid config: metod: unknown field" });
    expect(await direct({ method: "pul", target: "cifar" })).toMatchObject({ code: "E_CONFIG", message: expect.stringContaining("target") });

    // A missing source model is a checkpoint error, with its own exit code.
    const missing = await rejection(adapt({ ...TARGET, method: "pul", from: join(tempDir("sfda-nofrom"), "source.safetensors") }));
    expect(missing.code).toBe("E_CHECKPOINT");
  });

  it("cancels source training and adaptation through an AbortSignal", async () => {
    const ac = new AbortController();
    const events: Progress[] = [];
    const onProgress = (p: Progress): void => {
      events.push(p);
      if (p.step >= 2) ac.abort();
    };
    const err = await rejection(trainSource({ ...SOURCE, trainLimit: 4000, epochs: 3, progressEvery: 1 }, { signal: ac.signal, onProgress }));
    expect(err.code).toBe("E_CANCELLED");
    expect(events.at(-1)!.step).toBeLessThan(10);

    const ac2 = new AbortController();
    const steps: number[] = [];
    const from = (await sourceModel()).checkpoint!;
    const err2 = await rejection(
      adapt(
        { ...TARGET, method: "shot", epochs: 5, trainLimit: 2000, progressEvery: 1, from },
        {
          signal: ac2.signal,
          onProgress: (p) => {
            steps.push(p.step);
            if (p.step >= 2) ac2.abort();
          },
        },
      ),
    );
    expect(err2.code).toBe("E_CANCELLED");
    expect(Math.max(...steps)).toBeLessThan(10);
    expect((await rejection(adapt({ ...TARGET, method: "pul", from }, { signal: AbortSignal.abort() }))).code).toBe("E_CANCELLED");
  });
});

describe("goldpan sfda", () => {
  it("source then adapt: reports, run files, target accuracy before → after", async () => {
    const out = join(tempDir("sfda-cli"), "run");
    const s = await runCli(["sfda", "source", "--source", "mnist", ...limits, "--progress-every", "2", "--out", out]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^source model lenet-base on mnist: best epoch 1 of 1/);
    expect(s.stdout).toMatch(/held-out accuracy: \d+\.\d\d%/);
    expect(s.stdout).toContain(`adapt it: goldpan sfda adapt --method pul --from ${join(out, "source.safetensors")} --target usps`);
    expect(s.stderr).toMatch(/^epoch 1\/1 done: train loss [\d.]+ acc [\d.]+% \| held-out loss /m);
    for (const f of ["source.safetensors", "source-config.json", "source-metrics.jsonl"]) expect(existsSync(join(out, f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "source-config.json"), "utf8"))).toMatchObject({ source: "mnist", epochs: 1, trainLimit: 300, outDir: out });

    const a = await runCli(["sfda", "adapt", "--method", "pul", "--from", join(out, "source.safetensors"), "--target", "usps", ...limits, "--test-limit", "200", "--pul-lambda", "0.5", "--out", out]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^PUL on usps \(1 epoch, 5 steps, [\d.]+s\)\n {2}target test accuracy: \d+\.\d\d% → \d+\.\d\d% \([+-]\d+\.\d\d points, 200 images\)\n/);
    expect(a.stdout).toMatch(/criterion \(mutual information, no labels\): [\d.]+ → [\d.]+/);
    expect(a.stderr).toMatch(/^epoch 1\/1 done: target test loss [\d.]+ acc [\d.]+% \|/m);
    for (const f of ["adapted.safetensors", "adapt-config.json", "adapt-metrics.jsonl", "source-config.json"]) expect(existsSync(join(out, f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "adapt-config.json"), "utf8"))).toMatchObject({ method: "pul", pul: { lambda: 0.5 }, target: "usps" });
    // NaN metrics are written as null, one JSON object per line.
    const metrics = readFileSync(join(out, "adapt-metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { kind: string; accuracy: unknown });
    expect(metrics.at(-1)).toMatchObject({ kind: "epoch", accuracy: null });

    const j = await runCli(["sfda", "adapt", "--method", "none", "--from", join(out, "source.safetensors"), "--target", "usps", "--test-limit", "100", "--out", join(out, "none"), "--json"]);
    expect(j.code, j.stderr).toBe(0);
    const r = JSON.parse(j.stdout) as AdaptResult & { outDir: string };
    expect(r).toMatchObject({ method: "none", epochs: 0, steps: 0, outDir: join(out, "none") });
    expect(r.after.accuracy).toBe(r.before.accuracy);
  });

  it("exits with the table's codes: bad values, a missing source model", async () => {
    const bad = await runCli(["sfda", "adapt", "--method", "foo", "--target", "cifar", "--from", "x", "--json"]);
    expect(bad.code).toBe(EXIT_CODES.E_CONFIG.exit);
    expect(bad.stderr).toContain('--method: "foo" is not one of');
    expect(bad.stderr).toContain('--target: "cifar" is not one of');
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: "E_CONFIG" } });

    const out = join(tempDir("sfda-cli-missing"), "run");
    const missing = await runCli(["sfda", "adapt", "--method", "pul", "--from", join(out, "nope.safetensors"), "--target", "usps", "--out", out]);
    expect(missing.code).toBe(EXIT_CODES.E_CHECKPOINT.exit);
    expect(missing.stderr).toContain("E_CHECKPOINT");
    expect(existsSync(out)).toBe(false);
  });

  it("stops on Ctrl-C with exit 130 and no `train --resume` advice", async () => {
    const out = join(tempDir("sfda-sigint"), "run");
    const r = await interruptCli(["sfda", "source", "--source", "mnist", "--train-limit", "5000", "--epochs", "3", "--batch-size", "16", "--progress-every", "1", "--out", out], /^epoch 1\/3 step \d+/m);
    expect(r.code, r.stderr).toBe(EXIT_CODES.E_CANCELLED.exit);
    expect(r.stderr).toContain("Interrupted: stopping after the current step");
    expect(r.stderr).toContain("(E_CANCELLED, exit code 130)");
    expect(r.stderr).not.toContain("goldpan train --resume");
  });

  it("table: writes table.md and table.json, and a rerun reuses every job", async () => {
    const out = join(tempDir("sfda-table"), "table");
    const args = ["sfda", "table", "--seeds", "1", "--pairs", "m2u", "--methods", "none,pul", "--source-epochs", "1", "--adapt-epochs", "1", "--train-limit", "300", "--test-limit", "200", "--out", out];
    const t = await runCli(args);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/^\[1\/3\] source training on mnist, seed 0$/m);
    expect(t.stderr).toMatch(/^\[3\/3\] pul on m2u \(mnist → usps\), seed 0$/m);
    expect(t.stdout).toMatch(/^\| Method \| M→U \|$/m);
    expect(t.stdout).toMatch(/^\| Source only \| \d+\.\d\d ± 0\.00 \|$/m);
    expect(t.stdout).toMatch(/^\| PUL \| \d+\.\d\d ± 0\.00 \|$/m);
    expect(t.stdout).toContain("| *PUL (paper)* | *91.35* |");
    expect(t.stdout).toContain(`wrote ${join(out, "table.md")} and ${join(out, "table.json")}`);
    expect(readFileSync(join(out, "table.md"), "utf8")).toBe(t.stdout.slice(0, t.stdout.indexOf("\nwrote ")));
    const json = JSON.parse(readFileSync(join(out, "table.json"), "utf8")) as {
      rows: { method: string; cells: { m2u: { accuracy: { mean: number; std: number; values: number[] } } } }[];
      jobs: { ran: number; cached: number };
    };
    expect(json.rows.map((r) => r.method)).toEqual(["none", "pul"]);
    const pul = json.rows[1]!.cells.m2u.accuracy;
    expect(pul.values).toHaveLength(1);
    expect(pul).toMatchObject({ mean: pul.values[0], std: 0 });
    expect(json.jobs).toEqual({ ran: 3, cached: 0 });
    for (const f of ["mnist-seed0/source.safetensors", "mnist-seed0/source.json", "m2u-seed0/pul.json", "m2u-seed0/pul/adapted.safetensors"]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }

    const again = await runCli([...args, "--json"]);
    expect(again.code, again.stderr).toBe(0);
    const rerun = JSON.parse(again.stdout) as typeof json;
    expect(rerun.jobs).toEqual({ ran: 0, cached: 3 });
    expect(rerun.rows).toEqual(json.rows);
  });
});
