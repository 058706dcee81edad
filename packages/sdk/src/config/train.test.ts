import { describe, expect, it } from "vitest";
import { GoldpanError } from "../errors.js";
import { parseConfig } from "./parse.js";
import { TrainConfigSchema } from "./train.js";

const parse = (input: unknown) => parseConfig(TrainConfigSchema, input, "train config");

function configError(input: unknown): GoldpanError {
  try {
    parse(input);
  } catch (e) {
    expect(e).toBeInstanceOf(GoldpanError);
    return e as GoldpanError;
  }
  throw new Error("expected E_CONFIG");
}

describe("TrainConfigSchema", () => {
  it("fills every default", () => {
    expect(parse({})).toEqual({
      model: "lenet5",
      dataset: "mnist",
      epochs: 1,
      batchSize: 64,
      lr: 0.01,
      momentum: 0.9,
      weightDecay: 5e-4,
      nesterov: false,
      seed: 0,
      device: "cpu",
      progressEvery: 50,
      labels: "true",
      diagnosticsEvery: 50,
      diagnosticsSamples: 1000,
    });
  });

  it("takes diagnostics as a list of known measurements, and names a bad one", () => {
    expect(parse({ diagnostics: ["eq3"], diagnosticsEvery: 2, diagnosticsSamples: 64, diagnosticsAlpha: 0.1 })).toMatchObject({
      diagnostics: ["eq3"],
      diagnosticsEvery: 2,
      diagnosticsSamples: 64,
      diagnosticsAlpha: 0.1,
    });
    expect(parse({ diagnostics: ["ntk", "swing", "speed", "eq3"] }).diagnostics).toEqual(["ntk", "swing", "speed", "eq3"]);
    const e = configError({ diagnostics: ["eq3", "eq4"], diagnosticsEvery: 0, diagnosticsSamples: 1.5, diagnosticsAlpha: 0 });
    expect(Object.fromEntries(e.issues!.map((i) => [i.path.join("."), i.message]))).toEqual({
      "diagnostics.1": "must be one of eq3, ntk, swing, speed",
      diagnosticsEvery: "must be ≥ 1",
      diagnosticsSamples: "must be a whole number",
      diagnosticsAlpha: "must be > 0",
    });
    expect(configError({ diagnostics: "eq3" }).issues).toEqual([{ path: ["diagnostics"], message: "must be a list" }]);
  });

  it("keeps given values and optional fields", () => {
    const c = parse({ epochs: 3, dataDir: "/d", outDir: "runs/x", trainLimit: 512, seed: 2 ** 32 - 1, device: "cuda" });
    expect(c).toMatchObject({ epochs: 3, dataDir: "/d", outDir: "runs/x", trainLimit: 512, seed: 4294967295, device: "cuda" });
  });

  it("reports every bad field at once, each with its path", () => {
    const e = configError({
      model: "",
      dataset: "cifar",
      epochs: 0,
      batchSize: 1.5,
      lr: -1,
      momentum: 1,
      weightDecay: -0.1,
      nesterov: "yes",
      seed: 2 ** 32,
      device: "tpu",
      outDir: "",
      checkpointEvery: 0,
      progressEvery: 0,
      trainLimit: -5,
      testLimit: "all",
      labels: "shuffled",
      dataDir: 7,
      bogus: true,
    });
    expect(e.code).toBe("E_CONFIG");
    const fields = [
      "model",
      "dataset",
      "epochs",
      "batchSize",
      "lr",
      "momentum",
      "weightDecay",
      "nesterov",
      "seed",
      "device",
      "outDir",
      "checkpointEvery",
      "progressEvery",
      "trainLimit",
      "testLimit",
      "labels",
      "dataDir",
      "bogus",
    ];
    expect(e.issues?.map((i) => i.path.join(".")).sort()).toEqual([...fields].sort());
    for (const field of fields) expect(e.message).toContain(`- ${field}: `);
    expect(e.message).toMatch(/^invalid train config \(18 problems\):/);
  });

  it("says what a valid value is", () => {
    const e = configError({ epochs: 0, seed: -1, device: "tpu", bogus: 1 });
    const byField = Object.fromEntries(e.issues!.map((i) => [i.path.join("."), i.message]));
    expect(byField).toEqual({
      epochs: "must be ≥ 1",
      seed: "must be ≥ 0",
      device: "must be one of cpu, cuda",
      bogus: "unknown field",
    });
  });

  it("rejects nesterov without momentum, alongside other problems", () => {
    expect(configError({ nesterov: true, momentum: 0 }).issues).toEqual([{ path: ["nesterov"], message: "needs momentum > 0" }]);
    const e = configError({ nesterov: true, momentum: 0, epochs: 0 });
    expect(e.issues?.map((i) => i.path[0]).sort()).toEqual(["epochs", "nesterov"]);
    expect(parse({ nesterov: true }).nesterov).toBe(true);
  });

  it("rejects non-finite numbers and non-objects", () => {
    expect(configError({ lr: Number.NaN }).issues?.[0]?.path).toEqual(["lr"]);
    expect(configError({ lr: Number.POSITIVE_INFINITY }).issues?.[0]?.path).toEqual(["lr"]);
    expect(configError(null).issues).toHaveLength(1);
  });

  it("describes every field, for help texts", () => {
    for (const [key, field] of Object.entries(TrainConfigSchema.shape)) {
      expect(field.description, key).toBeTruthy();
    }
  });
});
