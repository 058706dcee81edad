/** The SDK over the built addon: training, progress, cancellation, errors, determinism, resume. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  cudaAvailable,
  evaluate,
  listModels,
  readCheckpoint,
  resume,
  train,
  version,
  type Progress,
  type TrainResult,
} from "@goldpan/sdk";
import { TINY, idx, tempDir, rejection } from "./helpers.js";


describe("the addon through the SDK", () => {
  it("answers the quick calls", () => {
    expect(version()).toMatch(/^\d+\.\d+\.\d+/);
    const models = listModels();
    const lenet = models.find((m) => m.name === "lenet5");
    expect(lenet).toMatchObject({ inputShape: [1, 28, 28], classes: 10 });
    expect(lenet!.paramCount).toBeGreaterThan(0);
    expect(typeof cudaAvailable()).toBe("boolean");
  });

  it("trains a tiny run, writes checkpoints and keeps the event loop responsive", async () => {
    const outDir = tempDir("train");
    const events: Progress[] = [];
    let ticks = 0;
    let last = performance.now();
    let maxGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const started = performance.now();
    let result: TrainResult;
    try {
      result = await train({ ...TINY, trainLimit: 1024, outDir, progressEvery: 1 }, { onProgress: (p) => events.push(p) });
    } finally {
      clearInterval(timer);
    }
    const wallMs = performance.now() - started;

    // The timer kept firing while the core trained on another thread.
    expect(ticks, `${ticks} ticks in ${wallMs.toFixed(0)} ms`).toBeGreaterThanOrEqual(Math.max(3, Math.floor((wallMs / 5) * 0.2)));
    expect(maxGap, "longest stall of the event loop (ms)").toBeLessThan(1000);

    expect(result).toMatchObject({ epochs: 1, steps: 16 });
    for (const k of ["trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "wallSec"] as const) {
      expect(Number.isFinite(result[k]), k).toBe(true);
    }
    expect(result.testAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.testAccuracy).toBeLessThanOrEqual(1);
    expect(result.weightsHash).toMatch(/^[0-9a-f]{64}$/);

    const steps = events.filter((e) => e.kind === "step");
    expect(steps.length).toBeGreaterThanOrEqual(8);
    for (const e of events) {
      expect(e).toMatchObject({ epoch: 1, epochs: 1, stepsPerEpoch: 16 });
      for (const k of ["step", "loss", "accuracy", "imagesPerSec", "elapsedSec"] as const) expect(Number.isFinite(e[k]), k).toBe(true);
      expect(e.imagesPerSec).toBeGreaterThan(0);
    }
    expect(steps.map((e) => e.step)).toEqual([...steps.map((e) => e.step)].sort((a, b) => a - b));
    const epochEnd = events.at(-1)!;
    expect(epochEnd.kind).toBe("epoch");
    expect(epochEnd.testAccuracy).toBeTypeOf("number");
    expect(epochEnd.testLoss).toBeTypeOf("number");

    expect(readdirSync(outDir).sort()).toEqual(expect.arrayContaining(["epoch-1.safetensors", "last.safetensors"]));
    expect(result.checkpoint).toBeDefined();
    expect(existsSync(result.checkpoint!)).toBe(true);
    const info = readCheckpoint(join(outDir, "epoch-1.safetensors"));
    expect(info).toMatchObject({ model: "lenet5", dataset: "mnist", epoch: 1, step: 16 });
    expect(info.config).toMatchObject({ epochs: 1, batchSize: 64, trainLimit: 1024, seed: 0 });

    const ev = await evaluate({ checkpoint: join(outDir, "last.safetensors"), limit: 200 });
    expect(ev).toMatchObject({ model: "lenet5", dataset: "mnist", split: "test", count: 200 });
    expect(ev.accuracy).toBeCloseTo(result.testAccuracy, 5);
  });

  it("cancels through an AbortSignal, leaving a readable checkpoint", async () => {
    const outDir = tempDir("cancel");
    const ac = new AbortController();
    const events: Progress[] = [];
    const err = await rejection(
      train(
        { ...TINY, trainLimit: 4096, batchSize: 32, epochs: 3, outDir, progressEvery: 1 },
        {
          signal: ac.signal,
          onProgress: (p) => {
            events.push(p);
            if (p.step >= 2) ac.abort();
          },
        },
      ),
    );
    expect(err.code).toBe("E_CANCELLED");
    expect(err.message).toMatch(/\(checkpoint: .+\)$/);
    expect(err.checkpoint).toBe(join(outDir, "last.safetensors"));
    const info = readCheckpoint(err.checkpoint!);
    expect(info.model).toBe("lenet5");
    expect(info.step).toBeGreaterThanOrEqual(2);
    expect(info.step).toBeLessThan(3 * 128);
    // Stopped within a step or so of the abort, not at the end of the run.
    expect(events.at(-1)!.step).toBeLessThan(10);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const err = await rejection(train(TINY, { signal: AbortSignal.abort() }));
    expect(err.code).toBe("E_CANCELLED");
  });

  it("reports every invalid field as E_CONFIG", async () => {
    const err = await rejection(train({ epochs: 0, batchSize: -1, lr: 0, device: "tpu" as "cpu", seed: 2 ** 32, colour: "red" } as never));
    expect(err.code).toBe("E_CONFIG");
    expect(err.issues!.map((i) => i.path.join(".")).sort()).toEqual(["batchSize", "colour", "device", "epochs", "lr", "seed"]);
    for (const field of ["epochs", "batchSize", "lr", "device", "seed", "colour"]) expect(err.message).toContain(`${field}: `);
  });

  it("reports an unknown model from the core as E_CONFIG", async () => {
    const err = await rejection(train({ ...TINY, model: "resnet9000" }));
    expect(err.code).toBe("E_CONFIG");
  });

  it("reports a missing data directory as E_DATA_NOT_FOUND", async () => {
    const err = await rejection(train({ ...TINY, dataDir: join(tempDir("nodata"), "missing") }));
    expect(err.code).toBe("E_DATA_NOT_FOUND");
  });

  it("reports a truncated IDX file as E_DATA_TRUNCATED", async () => {
    const dataDir = tempDir("truncated");
    const mnist = join(dataDir, "mnist");
    mkdirSync(mnist);
    const labels = idx(0x801, [100], new Uint8Array(100).map((_, i) => i % 10));
    const shortImages = idx(0x803, [100, 28, 28], new Uint8Array(10 * 28 * 28));
    writeFileSync(join(mnist, "train-images-idx3-ubyte.gz"), gzipSync(shortImages));
    writeFileSync(join(mnist, "train-labels-idx1-ubyte"), labels);
    writeFileSync(join(mnist, "t10k-images-idx3-ubyte"), shortImages);
    writeFileSync(join(mnist, "t10k-labels-idx1-ubyte"), labels);
    const err = await rejection(train({ ...TINY, dataDir }));
    expect(err.code).toBe("E_DATA_TRUNCATED");
    expect(err.message).toContain("images-idx3-ubyte");
  });

  it.skipIf(cudaAvailable())("reports device cuda on a CPU build as E_DEVICE", async () => {
    const err = await rejection(train({ ...TINY, device: "cuda" }));
    expect(err.code).toBe("E_DEVICE");
  });

  it("is deterministic: same seed, same weights; another seed, other weights", async () => {
    const tiny = { ...TINY, trainLimit: 256, testLimit: 100 };
    const [a, b, c] = [await train({ ...tiny, seed: 1 }), await train({ ...tiny, seed: 1 }), await train({ ...tiny, seed: 2 })];
    expect(a.weightsHash).toBe(b.weightsHash);
    expect(a.trainLoss).toBe(b.trainLoss);
    expect(c.weightsHash).not.toBe(a.weightsHash);
  });

  it("resuming from epoch 1 of 2 gives the weights of the uninterrupted run", async () => {
    const full = tempDir("full");
    const resumed = tempDir("resumed");
    const config = { ...TINY, epochs: 2, seed: 7 };
    const straight = await train({ ...config, outDir: full });
    expect(straight.epochs).toBe(2);
    expect(readCheckpoint(join(full, "epoch-1.safetensors")).epoch).toBe(1);

    const events: Progress[] = [];
    const continued = await resume({ checkpoint: join(full, "epoch-1.safetensors"), outDir: resumed }, { onProgress: (p) => events.push(p) });
    expect(continued.weightsHash).toBe(straight.weightsHash);
    expect(continued.epochs).toBe(2);
    expect(events.every((e) => e.epoch === 2)).toBe(true);
    expect(existsSync(join(resumed, "epoch-2.safetensors"))).toBe(true);
  });
});
