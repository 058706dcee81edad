import { describe, expect, it } from "vitest";
import { GoldpanError, describeFields, parseConfig } from "@goldpan/sdk";
import { AdaptConfigSchema, PulOptionsSchema, ShotOptionsSchema, SourceConfigSchema } from "./config.js";
import { TableOptionsSchema } from "./table.js";

function configError(schema: Parameters<typeof parseConfig>[0], input: unknown): GoldpanError {
  try {
    parseConfig(schema, input, "config");
  } catch (e) {
    expect(e).toBeInstanceOf(GoldpanError);
    expect((e as GoldpanError).code).toBe("E_CONFIG");
    return e as GoldpanError;
  }
  throw new Error("expected E_CONFIG");
}

const byField = (e: GoldpanError): Record<string, string> => Object.fromEntries(e.issues!.map((i) => [i.path.join("."), i.message]));

describe("SourceConfigSchema", () => {
  it("needs only the source and adds no defaults: those are the core's", () => {
    expect(parseConfig(SourceConfigSchema, { source: "mnist" }, "c")).toEqual({ source: "mnist" });
    const full = {
      source: "svhn",
      model: "dtn",
      dataDir: "/d",
      epochs: 3,
      batchSize: 32,
      lr: 0.1,
      momentum: 0,
      weightDecay: 0,
      nesterov: false,
      smoothing: 0,
      valFraction: 0.5,
      augment: true,
      seed: 4294967295,
      device: "cuda",
      outDir: "o",
      progressEvery: 1,
      trainLimit: 10,
    };
    expect(parseConfig(SourceConfigSchema, full, "c")).toEqual(full);
  });

  it("reports every bad field at once", () => {
    const e = configError(SourceConfigSchema, {
      source: "cifar",
      model: "lenet5",
      epochs: 0,
      batchSize: 2.5,
      lr: 0,
      momentum: 1,
      weightDecay: -1,
      nesterov: "yes",
      smoothing: 1,
      valFraction: 0,
      augment: 1,
      seed: -1,
      device: "tpu",
      outDir: "",
      progressEvery: 0,
      trainLimit: 0,
      dataDir: 3,
      colour: "red",
    });
    expect(byField(e)).toEqual({
      source: '"cifar" is not one of mnist, usps, svhn',
      model: '"lenet5" is not one of lenet-base, dtn',
      epochs: "must be ≥ 1",
      batchSize: "must be a whole number",
      lr: "must be > 0",
      momentum: "must be in [0, 1)",
      weightDecay: "must be ≥ 0",
      nesterov: "must be true or false",
      smoothing: "must be in [0, 1)",
      valFraction: "must be in (0, 1)",
      augment: "must be true or false",
      seed: "must be ≥ 0",
      device: "must be one of cpu, cuda",
      outDir: "must not be empty",
      progressEvery: "must be ≥ 1",
      trainLimit: "must be ≥ 1",
      dataDir: "must be a path",
      colour: "unknown field",
    });
    expect(e.message).toMatch(/^invalid config \(18 problems\):/);
  });

  it("says a missing source is required", () => {
    expect(byField(configError(SourceConfigSchema, {}))).toEqual({ source: "required: one of mnist, usps, svhn" });
  });
});

describe("AdaptConfigSchema", () => {
  it("needs method, from and target; keeps nested PUL and SHOT options as given", () => {
    expect(parseConfig(AdaptConfigSchema, { method: "pul", from: "s.safetensors", target: "usps" }, "c")).toEqual({
      method: "pul",
      from: "s.safetensors",
      target: "usps",
    });
    const c = { method: "shot", from: "f", target: "mnist", pul: { attach: "backbone", freezeClassifier: false }, shot: { clsPar: 0.3 } };
    expect(parseConfig(AdaptConfigSchema, c, "c")).toEqual(c);
    const e = configError(AdaptConfigSchema, {});
    expect(Object.keys(byField(e)).sort()).toEqual(["from", "method", "target"]);
    expect(byField(e).method).toBe("required: one of none, adabn, kl-only, pul, shot-im, shot");
  });

  it("reports bad nested options by their dotted path, with the rest", () => {
    const e = configError(AdaptConfigSchema, {
      method: "foo",
      from: "f",
      target: "cifar",
      epochs: -1,
      testLimit: 1.5,
      pul: { classes: 1, temperature: 0, lambda: -1, attach: "head", hidden: 0, labels: "random", freezeClassifier: "no", extra: 1 },
      shot: { clsPar: -0.1, entPar: -1, diversity: 0, epsilon: -1 },
    });
    expect(byField(e)).toEqual({
      method: '"foo" is not one of none, adabn, kl-only, pul, shot-im, shot',
      target: '"cifar" is not one of mnist, usps, svhn',
      epochs: "must be ≥ 1",
      testLimit: "must be a whole number",
      "pul.classes": "must be ≥ 2",
      "pul.temperature": "must be > 0",
      "pul.lambda": "must be ≥ 0",
      "pul.attach": '"head" is not one of backbone, bottleneck',
      "pul.hidden": "must be ≥ 1",
      "pul.labels": '"random" is not one of fixed, redraw',
      "pul.freezeClassifier": "must be true or false",
      "pul.extra": "unknown field",
      "shot.clsPar": "must be ≥ 0",
      "shot.entPar": "must be ≥ 0",
      "shot.diversity": "must be true or false",
      "shot.epsilon": "must be ≥ 0",
    });
  });

  it("needs batches of 2 or more for a method that trains, also beside other problems", () => {
    const base = { from: "f", target: "usps", batchSize: 1 };
    expect(byField(configError(AdaptConfigSchema, { ...base, method: "pul" }))).toEqual({
      batchSize: "must be ≥ 2 for a method that trains (batch norms use batch statistics)",
    });
    expect(Object.keys(byField(configError(AdaptConfigSchema, { ...base, method: "shot", lr: -1 }))).sort()).toEqual(["batchSize", "lr"]);
    expect(parseConfig(AdaptConfigSchema, { ...base, method: "adabn" }, "c").batchSize).toBe(1);
  });

  it("rejects non-finite numbers", () => {
    expect(Object.keys(byField(configError(AdaptConfigSchema, { method: "pul", from: "f", target: "usps", lr: Number.NaN, pul: { lambda: Infinity } })))).toEqual([
      "lr",
      "pul.lambda",
    ]);
  });
});

describe("descriptions", () => {
  it("every field of every schema has one, nested ones included (for help texts)", () => {
    for (const schema of [SourceConfigSchema, AdaptConfigSchema, PulOptionsSchema, ShotOptionsSchema, TableOptionsSchema]) {
      for (const field of describeFields(schema)) expect(field.description, field.key).toBeTruthy();
    }
  });

  it("document the core's defaults without applying them", () => {
    const fields = Object.fromEntries(describeFields(AdaptConfigSchema).map((f) => [f.key, f]));
    expect(fields["pul.classes"]).toMatchObject({ kind: "int", optional: true, description: expect.stringContaining("default 3") });
    expect(fields["pul.classes"]).not.toHaveProperty("default");
    expect(fields.epochs?.description).toContain("default 2 for pul and kl-only, 30 for shot and shot-im");
    expect(fields.method).toMatchObject({ kind: "enum", optional: false });
  });
});
