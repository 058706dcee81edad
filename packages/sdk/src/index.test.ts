/**
 * The SDK's wiring, against a fake addon: validation before the core, dataDir resolution, the
 * AbortSignal → CancelToken hook, error normalization. The real addon is exercised in test/.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Progress, TrainResult } from "./index.js";

const fake = vi.hoisted(() => {
  class CancelToken {
    static last: CancelToken | undefined;
    cancelled = false;
    constructor() {
      CancelToken.last = this;
    }
    cancel(): void {
      this.cancelled = true;
    }
  }
  return {
    CancelToken,
    train: vi.fn(),
    resume: vi.fn(),
    evaluate: vi.fn(),
    readCheckpoint: vi.fn(),
    listModels: vi.fn(),
    cudaAvailable: vi.fn(),
    version: vi.fn(),
    benchmark: vi.fn(),
    hessianAnalyse: vi.fn(),
    hessianHvp: vi.fn(),
    ntkAnalyse: vi.fn(),
  };
});

vi.mock("./binding.js", () => ({ loadBinding: () => fake }));

const sdk = await import("./index.js");

const result: TrainResult = {
  epochs: 1,
  steps: 8,
  trainLoss: 1,
  trainAccuracy: 0.5,
  testLoss: 1,
  testAccuracy: 0.5,
  wallSec: 0.1,
  weightsHash: "ab",
  progressEvents: 0,
};

const step: Progress = {
  kind: "step",
  epoch: 1,
  epochs: 1,
  step: 1,
  stepInEpoch: 1,
  stepsPerEpoch: 8,
  loss: 2.3,
  accuracy: 0.1,
  imagesPerSec: 1000,
  elapsedSec: 0.01,
};

type TrainFn = (config: unknown, onProgress?: (p: Progress) => void, token?: InstanceType<typeof fake.CancelToken>) => Promise<TrainResult>;

beforeEach(() => {
  vi.clearAllMocks();
  fake.CancelToken.last = undefined;
  delete process.env.GOLDPAN_DATA;
});

describe("train", () => {
  it("validates before calling the core, listing every bad field", async () => {
    await expect(sdk.train({ epochs: 0, lr: "x" as unknown as number })).rejects.toMatchObject({
      code: "E_CONFIG",
      issues: [
        { path: ["epochs"], message: "must be ≥ 1" },
        { path: ["lr"], message: "must be a number" },
      ],
    });
    expect(fake.train).not.toHaveBeenCalled();
  });

  it("passes the full config with dataDir resolved and outDir absolute", async () => {
    process.env.GOLDPAN_DATA = "/env/data";
    fake.train.mockResolvedValue(result);
    await expect(sdk.train({ epochs: 2, outDir: "runs/x" })).resolves.toEqual(result);
    const [config, onProgress, token] = fake.train.mock.calls[0]!;
    expect(config).toMatchObject({ epochs: 2, dataDir: "/env/data", outDir: `${process.cwd()}/runs/x`, lr: 0.01 });
    expect(onProgress).toBeTypeOf("function"); // always given: the SDK counts delivered events
    expect(token).toBe(fake.CancelToken.last);
  });

  it("forwards progress and cancels the token when the signal aborts", async () => {
    const ac = new AbortController();
    const seen: Progress[] = [];
    (fake.train as unknown as { mockImplementation(f: TrainFn): void }).mockImplementation(async (_c, onProgress, token) => {
      onProgress?.(step);
      ac.abort();
      expect(token?.cancelled).toBe(true);
      throw Object.assign(new Error("cancelled at epoch 1, step 1 (checkpoint: /o/last.safetensors)"), { code: "E_CANCELLED" });
    });
    const err = await sdk.train({}, { signal: ac.signal, onProgress: (p) => seen.push(p) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(sdk.GoldpanError);
    expect(err).toMatchObject({ code: "E_CANCELLED", checkpoint: "/o/last.safetensors" });
    expect(seen).toEqual([step]);
  });

  it("resolves only after every progress event the core sent has arrived", async () => {
    // The addon's result can overtake its last progress events (different native queues).
    (fake.train as unknown as { mockImplementation(f: TrainFn): void }).mockImplementation(async (_c, onProgress) => {
      setImmediate(() => onProgress?.(step));
      setTimeout(() => onProgress?.({ ...step, kind: "epoch" }), 20);
      return { ...result, progressEvents: 2 };
    });
    const seen: string[] = [];
    await sdk.train({}, { onProgress: (p) => seen.push(p.kind) });
    expect(seen).toEqual(["step", "epoch"]);
  });

  it("waits for the events sent before an error, too", async () => {
    (fake.train as unknown as { mockImplementation(f: TrainFn): void }).mockImplementation(async (_c, onProgress) => {
      setTimeout(() => onProgress?.(step), 20);
      throw Object.assign(new Error("cancelled"), { code: "E_CANCELLED", progressEvents: 1 });
    });
    const seen: string[] = [];
    await expect(sdk.train({}, { onProgress: (p) => seen.push(p.kind) })).rejects.toMatchObject({ code: "E_CANCELLED" });
    expect(seen).toEqual(["step"]);
  });

  it("rejects at once with E_CANCELLED when the signal is already aborted", async () => {
    await expect(sdk.train({}, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "E_CANCELLED" });
    expect(fake.train).not.toHaveBeenCalled();
  });

  it("cancels the run and rejects with the callback's error when onProgress throws", async () => {
    (fake.train as unknown as { mockImplementation(f: TrainFn): void }).mockImplementation(async (_c, onProgress, token) => {
      onProgress?.(step);
      onProgress?.(step);
      expect(token?.cancelled).toBe(true);
      return result;
    });
    const onProgress = vi.fn(() => {
      throw Object.assign(new Error("disk full"), { code: "ENOSPC", syscall: "write" });
    });
    await expect(sdk.train({}, { onProgress })).rejects.toMatchObject({ code: "E_IO", message: "disk full" });
    expect(onProgress).toHaveBeenCalledTimes(1);
  });

  it("normalizes addon errors", async () => {
    fake.train.mockRejectedValue(Object.assign(new Error("no such dir"), { code: "E_DATA_NOT_FOUND" }));
    await expect(sdk.train({})).rejects.toMatchObject({ code: "E_DATA_NOT_FOUND", name: "GoldpanError" });
  });
});

describe("runTask", () => {
  it("gives any addon call the same progress, cancel and error plumbing", async () => {
    const ac = new AbortController();
    const seen: Progress[] = [];
    const err = await sdk
      .runTask({ signal: ac.signal, onProgress: (p) => seen.push(p) }, async (b, onProgress, token) => {
        expect(b).toBe(fake);
        setTimeout(() => onProgress(step), 10);
        ac.abort();
        expect(token.cancelled).toBe(true);
        throw Object.assign(new Error("cancelled at epoch 1, step 1"), { code: "E_CANCELLED", progressEvents: 1 });
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(sdk.GoldpanError);
    expect(err).toMatchObject({ code: "E_CANCELLED" });
    expect(seen).toEqual([step]);
    await expect(sdk.runTask({}, async () => ({ value: 1, progressEvents: 0 }))).resolves.toEqual({ value: 1, progressEvents: 0 });
  });
});

describe("resume, evaluate and the sync calls", () => {
  it("resume keeps the checkpoint's dataDir unless one is given", async () => {
    fake.resume.mockResolvedValue(result);
    await sdk.resume({ checkpoint: "/r/epoch-1.safetensors" });
    expect(fake.resume.mock.calls[0]![0]).toEqual({ checkpoint: "/r/epoch-1.safetensors" });
    process.env.GOLDPAN_DATA = "/env";
    await sdk.resume({ checkpoint: "/r/epoch-1.safetensors", epochs: 3 });
    expect(fake.resume.mock.calls[1]![0]).toEqual({ checkpoint: "/r/epoch-1.safetensors", dataDir: "/env", epochs: 3 });
  });

  it("evaluate resolves the data dir", async () => {
    fake.evaluate.mockResolvedValue({});
    await sdk.evaluate({ checkpoint: "/c.safetensors", dataDir: "/d" });
    expect(fake.evaluate.mock.calls[0]![0]).toEqual({ checkpoint: "/c.safetensors", dataDir: "/d", split: "test", batchSize: 256, device: "cpu" });
  });

  it("readCheckpoint parses the stored config and normalizes errors", () => {
    fake.readCheckpoint.mockReturnValueOnce({ path: "/c", configJson: '{"epochs":2}' });
    expect(sdk.readCheckpoint("/c").config).toEqual({ epochs: 2 });
    fake.readCheckpoint.mockImplementationOnce(() => {
      throw Object.assign(new Error("not a checkpoint"), { code: "E_CHECKPOINT" });
    });
    expect(() => sdk.readCheckpoint("/c")).toThrow(expect.objectContaining({ code: "E_CHECKPOINT" }));
  });
});

describe("hessian", () => {
  const report = { loss: 1, gradNorm: 2, eigen: null, trace: null, density: null, products: 0, progressEvents: 0 };

  it("validates, fills the core's defaults and sends absolute paths; dataDir only when given or in $GOLDPAN_DATA", async () => {
    fake.hessianAnalyse.mockResolvedValue(report);
    await sdk.hessian({ checkpoint: "r/last.safetensors", topK: 2, trace: true });
    const [config, onProgress, token] = fake.hessianAnalyse.mock.calls[0]!;
    expect(config).toMatchObject({ checkpoint: `${process.cwd()}/r/last.safetensors`, topK: 2, trace: true, samples: 1000, batchSize: 500 });
    expect(config).not.toHaveProperty("dataDir");
    expect(onProgress).toBeTypeOf("function");
    expect(token).toBe(fake.CancelToken.last);
    process.env.GOLDPAN_DATA = "/env";
    await sdk.hessian({ checkpoint: "/c" });
    expect(fake.hessianAnalyse.mock.calls[1]![0]).toMatchObject({ dataDir: "/env" });
    await expect(sdk.hessian({ checkpoint: "/c", samples: 0 })).rejects.toMatchObject({ code: "E_CONFIG", issues: [{ path: ["samples"] }] });
    expect(fake.hessianAnalyse).toHaveBeenCalledTimes(2);
  });

  it("hessianEigen, hessianTrace and hessianDensity each ask for their analysis alone", async () => {
    fake.hessianAnalyse.mockResolvedValue(report);
    await sdk.hessianEigen({ checkpoint: "/c", k: 3 });
    await sdk.hessianTrace({ checkpoint: "/c", traceSamples: 20 });
    await sdk.hessianDensity({ checkpoint: "/c", densityRuns: 2 });
    const configs = fake.hessianAnalyse.mock.calls.map((c) => c[0] as Record<string, unknown>);
    expect(configs[0]).toMatchObject({ topK: 3, maxIter: 100 });
    expect(configs[0]).not.toHaveProperty("k");
    expect(configs[1]).toMatchObject({ trace: true, traceSamples: 20 });
    expect(configs[2]).toMatchObject({ density: true, densityRuns: 2 });
    for (const c of configs) expect(Object.keys(c).filter((k) => ["topK", "trace", "density"].includes(k))).toHaveLength(1);
    await expect(sdk.hessianEigen({ checkpoint: "/c", k: 0 })).rejects.toMatchObject({ code: "E_CONFIG", issues: [{ path: ["k"] }] });
  });

  it("forwards analysis progress and cancels on abort", async () => {
    const ac = new AbortController();
    const analysis: Progress = { ...step, kind: "analysis", step: 1, diagnostics: { phase: "eigen" } };
    const seen: Progress[] = [];
    fake.hessianAnalyse.mockImplementation(async (_c: unknown, onProgress: (p: Progress) => void, token: { cancelled: boolean }) => {
      onProgress(analysis);
      ac.abort();
      expect(token.cancelled).toBe(true);
      throw Object.assign(new Error("cancelled during the Hessian analysis"), { code: "E_CANCELLED" });
    });
    await expect(sdk.hessianEigen({ checkpoint: "/c" }, { signal: ac.signal, onProgress: (p) => seen.push(p) })).rejects.toMatchObject({ code: "E_CANCELLED" });
    expect(seen.map((p) => p.diagnostics?.phase)).toEqual(["eigen"]);
    await expect(sdk.hessianTrace({ checkpoint: "/c" }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "E_CANCELLED" });
  });

  it("hvp sends the vector as a Float64Array and normalizes errors", async () => {
    fake.hessianHvp.mockResolvedValue({ loss: 1, gradient: new Float64Array(2), hv: new Float64Array(2), wallSec: 0 });
    await sdk.hvp({ checkpoint: "/c", samples: 10 }, [1, 2]);
    const [config, vector, token] = fake.hessianHvp.mock.calls[0]!;
    expect(config).toEqual({ checkpoint: "/c", split: "train", samples: 10, batchSize: 500, mode: "eval", precision: "f32", seed: 0 });
    expect(vector).toEqual(new Float64Array([1, 2]));
    expect(token).toBe(fake.CancelToken.last);
    const v = new Float64Array(3);
    await sdk.hvp({ checkpoint: "/c" }, v);
    expect(fake.hessianHvp.mock.calls[1]![1]).toBe(v);
    fake.hessianHvp.mockRejectedValue(Object.assign(new Error("shape mismatch: a vector of 3 values"), { code: "E_SHAPE" }));
    await expect(sdk.hvp({ checkpoint: "/c" }, v)).rejects.toMatchObject({ code: "E_SHAPE", name: "GoldpanError" });
    await expect(sdk.hvp({ checkpoint: "/c", topK: 1 } as never, v)).rejects.toMatchObject({ code: "E_CONFIG" });
  });
});

describe("ntk", () => {
  const report = { n: 20, kernel: "full", eigenvalues: [], files: [], progressEvents: 0 };

  it("sends absolute paths and the memory budget in bytes; ntkEigen asks for k eigenvalues matrix-free", async () => {
    delete process.env.GOLDPAN_DATA;
    fake.ntkAnalyse.mockResolvedValue(report);
    await sdk.ntk({ checkpoint: "r/last.safetensors", kernel: "full", memoryBudget: "2GiB", outDir: "o" });
    const [config, onProgress, token] = fake.ntkAnalyse.mock.calls[0]!;
    expect(config).toMatchObject({ checkpoint: `${process.cwd()}/r/last.safetensors`, outDir: `${process.cwd()}/o`, kernel: "full", method: "structured", memoryBudget: 2 ** 31, n: 500, eigen: true });
    expect(config).not.toHaveProperty("dataDir");
    expect(onProgress).toBeTypeOf("function");
    expect(token).toBe(fake.CancelToken.last);
    await sdk.ntkEigen({ checkpoint: "/c", k: 4 });
    const eigen = fake.ntkAnalyse.mock.calls[1]![0] as Record<string, unknown>;
    expect(eigen).toMatchObject({ topK: 4, method: "ntvp", eigen: false });
    expect(eigen).not.toHaveProperty("k");
    await expect(sdk.ntk({ checkpoint: "/c", kernel: "diag" as never })).rejects.toMatchObject({ code: "E_CONFIG", issues: [{ path: ["kernel"] }] });
    await expect(sdk.ntkEigen({ checkpoint: "/c" }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "E_CANCELLED" });
    expect(fake.ntkAnalyse).toHaveBeenCalledTimes(2);
  });

  it("forwards phase events and normalizes E_MEMORY", async () => {
    const seen: Progress[] = [];
    fake.ntkAnalyse.mockImplementation(async (_c: unknown, onProgress: (p: Progress) => void) => {
      onProgress({ ...step, kind: "analysis", step: 0, diagnostics: { phase: "kernel" } });
      throw Object.assign(new Error("the full kernel of 500 samples needs more memory"), { code: "E_MEMORY", progressEvents: 1 });
    });
    await expect(sdk.ntk({ checkpoint: "/c" }, { onProgress: (p) => seen.push(p) })).rejects.toMatchObject({ code: "E_MEMORY", name: "GoldpanError" });
    expect(seen.map((p) => p.diagnostics?.phase)).toEqual(["kernel"]);
  });
});
