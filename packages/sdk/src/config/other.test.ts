import { describe, expect, it } from "vitest";
import { BenchmarkConfigSchema } from "./benchmark.js";
import { EvalConfigSchema } from "./eval.js";
import { parseConfig } from "./parse.js";
import { ResumeConfigSchema } from "./resume.js";

describe("EvalConfigSchema", () => {
  it("needs a checkpoint and fills defaults", () => {
    expect(parseConfig(EvalConfigSchema, { checkpoint: "a.safetensors" }, "eval config")).toEqual({
      checkpoint: "a.safetensors",
      split: "test",
      batchSize: 256,
      device: "cpu",
    });
    expect(() => parseConfig(EvalConfigSchema, {}, "eval config")).toThrow(/checkpoint: /);
  });

  it("reports each bad field", () => {
    try {
      parseConfig(EvalConfigSchema, { checkpoint: "a", split: "val", limit: 0, batchSize: 0 }, "eval config");
      expect.unreachable();
    } catch (e) {
      expect((e as { issues: { path: string[] }[] }).issues.map((i) => i.path[0]).sort()).toEqual(["batchSize", "limit", "split"]);
    }
  });
});

describe("ResumeConfigSchema", () => {
  it("has no defaults besides the checkpoint's own config", () => {
    expect(parseConfig(ResumeConfigSchema, { checkpoint: "c" }, "resume config")).toEqual({ checkpoint: "c" });
  });
});

describe("BenchmarkConfigSchema", () => {
  it("fills defaults", () => {
    expect(parseConfig(BenchmarkConfigSchema, {}, "benchmark config")).toEqual({
      model: "lenet5",
      batchSize: 64,
      mode: "train",
      iters: 20,
      warmup: 3,
      seed: 0,
    });
  });
});

describe("descriptions", () => {
  it("every field of every schema has one", () => {
    for (const schema of [EvalConfigSchema, ResumeConfigSchema, BenchmarkConfigSchema]) {
      for (const [key, field] of Object.entries(schema.shape)) expect(field.description, key).toBeTruthy();
    }
  });
});
