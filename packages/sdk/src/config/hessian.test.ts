import { describe, expect, it } from "vitest";
import { GoldpanError } from "../errors.js";
import {
  HessianConfigSchema,
  HessianDensityConfigSchema,
  HessianEigenConfigSchema,
  HessianTraceConfigSchema,
  HvpConfigSchema,
} from "./hessian.js";
import { parseConfig } from "./parse.js";

const parse = (input: unknown) => parseConfig(HessianConfigSchema, input, "hessian config");

/** Each bad field's message, by dotted path. */
function problems(schema: Parameters<typeof parseConfig>[0], input: unknown): Record<string, string> {
  try {
    parseConfig(schema, input, "hessian config");
  } catch (e) {
    expect(e).toBeInstanceOf(GoldpanError);
    expect((e as GoldpanError).code).toBe("E_CONFIG");
    return Object.fromEntries((e as GoldpanError).issues!.map((i) => [i.path.join("."), i.message]));
  }
  throw new Error("expected E_CONFIG");
}

describe("HessianConfigSchema", () => {
  it("fills the core's defaults (HessianConfig::default()); dataDir and labels are left to the checkpoint", () => {
    expect(parse({ checkpoint: "r/last.safetensors" })).toEqual({
      checkpoint: "r/last.safetensors",
      split: "train",
      samples: 1000,
      batchSize: 500,
      mode: "eval",
      precision: "f32",
      seed: 0,
      topK: 0,
      maxIter: 100,
      tol: 1e-3,
      trace: false,
      traceSamples: 100,
      traceTol: 1e-3,
      density: false,
      densitySteps: 90,
      densityRuns: 1,
    });
  });

  it("keeps given values", () => {
    const c = parse({ checkpoint: "c", dataDir: "/d", labels: "random", mode: "train", precision: "f64", split: "test", topK: 3, trace: true, density: true, tol: 0 });
    expect(c).toMatchObject({ dataDir: "/d", labels: "random", mode: "train", precision: "f64", split: "test", topK: 3, trace: true, density: true, tol: 0 });
  });

  it("reports every bad field at once, by name, saying what is valid", () => {
    expect(
      problems(HessianConfigSchema, {
        split: "val",
        samples: 0,
        batchSize: 2.5,
        labels: "random-redraw",
        mode: "infer",
        precision: "f16",
        seed: -1,
        topK: -1,
        maxIter: 0,
        tol: -1,
        trace: "yes",
        traceSamples: 5,
        traceTol: Number.NaN,
        density: 1,
        densitySteps: 0,
        densityRuns: 0,
        bogus: true,
      }),
    ).toEqual({
      checkpoint: "must be a path",
      split: "must be one of train, test",
      samples: "must be ≥ 1",
      batchSize: "must be a whole number",
      labels: "must be one of true, random",
      mode: "must be one of eval, train",
      precision: "must be one of f32, f64",
      seed: "must be ≥ 0",
      topK: "must be ≥ 0",
      maxIter: "must be ≥ 1",
      tol: "must be ≥ 0",
      trace: "must be true or false",
      traceSamples: "must be ≥ 10 (the trace's minimum sample count)",
      traceTol: "must be a number",
      density: "must be true or false",
      densitySteps: "must be ≥ 1",
      densityRuns: "must be ≥ 1",
      bogus: "unknown field",
    });
  });

  it("needs a Lanczos step per eigenpair, alongside other problems", () => {
    expect(problems(HessianConfigSchema, { checkpoint: "c", topK: 5, maxIter: 4 })).toEqual({ maxIter: "must be ≥ the number of eigenpairs asked for (one Lanczos step each at least)" });
    expect(problems(HessianConfigSchema, { checkpoint: "c", topK: 5, maxIter: 4, samples: 0 })).toHaveProperty("maxIter");
    expect(parse({ checkpoint: "c", topK: 5, maxIter: 5 }).maxIter).toBe(5);
  });

  it("describes every field, for help texts", () => {
    for (const schema of [HessianConfigSchema, HessianEigenConfigSchema, HessianTraceConfigSchema, HessianDensityConfigSchema, HvpConfigSchema]) {
      for (const [key, field] of Object.entries(schema.shape)) expect(field.description, key).toBeTruthy();
    }
  });
});

describe("the single-analysis schemas", () => {
  it("take only their own fields", () => {
    expect(parseConfig(HessianEigenConfigSchema, { checkpoint: "c" }, "x")).toMatchObject({ k: 1, maxIter: 100, tol: 1e-3, samples: 1000 });
    expect(problems(HessianEigenConfigSchema, { checkpoint: "c", k: 0, trace: true })).toEqual({ k: "must be ≥ 1", trace: "unknown field" });
    expect(problems(HessianEigenConfigSchema, { checkpoint: "c", k: 3, maxIter: 2 })).toEqual({ maxIter: "must be ≥ the number of eigenpairs asked for (one Lanczos step each at least)" });
    expect(parseConfig(HessianTraceConfigSchema, { checkpoint: "c" }, "x")).toMatchObject({ traceSamples: 100, traceTol: 1e-3 });
    expect(problems(HessianTraceConfigSchema, { checkpoint: "c", topK: 2 })).toEqual({ topK: "unknown field" });
    expect(parseConfig(HessianDensityConfigSchema, { checkpoint: "c" }, "x")).toMatchObject({ densitySteps: 90, densityRuns: 1 });
    expect(Object.keys(HvpConfigSchema.shape)).toEqual(["checkpoint", "dataDir", "split", "samples", "batchSize", "labels", "mode", "precision", "seed"]);
    expect(problems(HvpConfigSchema, { checkpoint: "c", topK: 1 })).toEqual({ topK: "unknown field" });
  });
});
