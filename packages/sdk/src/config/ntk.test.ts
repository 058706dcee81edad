import { describe, expect, it } from "vitest";
import { GoldpanError } from "../errors.js";
import { describeFields } from "./describe.js";
import { NtkConfigSchema, NtkEigenConfigSchema, parseBytes } from "./ntk.js";
import { parseConfig } from "./parse.js";

const parse = (input: unknown) => parseConfig(NtkConfigSchema, input, "ntk config");

/** Each bad field's message, by dotted path. */
function problems(schema: Parameters<typeof parseConfig>[0], input: unknown): Record<string, string> {
  try {
    parseConfig(schema, input, "ntk config");
  } catch (e) {
    expect(e).toBeInstanceOf(GoldpanError);
    expect((e as GoldpanError).code).toBe("E_CONFIG");
    return Object.fromEntries((e as GoldpanError).issues!.map((i) => [i.path.join("."), i.message]));
  }
  throw new Error("expected E_CONFIG");
}

const BYTES_ERROR = "must be a size in bytes: a whole number ≥ 1, or text such as 4GiB, 500MB, 1kB";

describe("NtkConfigSchema", () => {
  it("fills the core's defaults (NtkConfig::default()); dataDir and outDir are left out", () => {
    expect(parse({ checkpoint: "r/last.safetensors" })).toEqual({
      checkpoint: "r/last.safetensors",
      split: "train",
      n: 500,
      kernel: "trace",
      layers: [],
      memoryBudget: 4 * 2 ** 30,
      batchSize: 500,
      precision: "f32",
      seed: 0,
      method: "structured",
      topK: 0,
      eigen: true,
    });
  });

  it("keeps given values and reads a memory budget given as text", () => {
    const c = parse({ checkpoint: "c", dataDir: "/d", outDir: "o", split: "test", n: 20, kernel: "full", method: "jacobian", topK: 3, eigen: false, layers: ["conv1", "fc3"], memoryBudget: "2GiB", precision: "f64", seed: 7 });
    expect(c).toMatchObject({ dataDir: "/d", outDir: "o", split: "test", n: 20, kernel: "full", method: "jacobian", topK: 3, eigen: false, layers: ["conv1", "fc3"], memoryBudget: 2 ** 31, precision: "f64", seed: 7 });
    expect(parse({ checkpoint: "c", memoryBudget: 1000 }).memoryBudget).toBe(1000);
    expect(parse({ checkpoint: "c", memoryBudget: "500MB" }).memoryBudget).toBe(5e8);
  });

  it("reports every bad field at once, by name, saying what is valid", () => {
    expect(
      problems(NtkConfigSchema, {
        split: "val",
        n: 0,
        kernel: "diag",
        method: "svd",
        topK: -1,
        eigen: "yes",
        layers: "conv1",
        memoryBudget: "lots",
        batchSize: 2.5,
        precision: "f16",
        seed: -1,
        bogus: true,
      }),
    ).toEqual({
      checkpoint: "must be a path",
      split: "must be one of train, test",
      n: "must be ≥ 1",
      kernel: "must be one of full, blocks, trace",
      method: "must be one of jacobian, structured, ntvp",
      topK: "must be ≥ 0",
      eigen: "must be true or false",
      layers: "must be a list",
      memoryBudget: BYTES_ERROR,
      batchSize: "must be a whole number",
      precision: "must be one of f32, f64",
      seed: "must be ≥ 0",
      bogus: "unknown field",
    });
    for (const bad of [0, -5, 1.5, "", "0B", "4 parsecs", "GiB", true]) {
      expect(problems(NtkConfigSchema, { checkpoint: "c", memoryBudget: bad }), String(bad)).toEqual({ memoryBudget: BYTES_ERROR });
    }
    expect(problems(NtkConfigSchema, { checkpoint: "c", layers: ["conv1", ""] })).toEqual({ "layers.1": "must not be empty" });
  });

  it("needs topK ≥ 1 for the matrix-free method, alongside other problems", () => {
    const message = "the matrix-free method (ntvp) computes top eigenvalues only: give topK ≥ 1";
    expect(problems(NtkConfigSchema, { checkpoint: "c", method: "ntvp" })).toEqual({ topK: message });
    expect(problems(NtkConfigSchema, { checkpoint: "c", method: "ntvp", topK: 0, n: 0 })).toEqual({ n: "must be ≥ 1", topK: message });
    expect(parse({ checkpoint: "c", method: "ntvp", topK: 2 }).topK).toBe(2);
  });

  it("describes every field, for help texts; the budget reads as text", () => {
    for (const schema of [NtkConfigSchema, NtkEigenConfigSchema]) {
      for (const [key, field] of Object.entries(schema.shape)) expect(field.description, key).toBeTruthy();
    }
    const fields = Object.fromEntries(describeFields(NtkConfigSchema).map((f) => [f.key, f]));
    expect(fields.memoryBudget).toMatchObject({ kind: "string", default: 4 * 2 ** 30 });
    expect(fields.layers).toMatchObject({ kind: "list", default: [] });
    expect(fields.layers).not.toHaveProperty("choices");
  });
});

describe("NtkEigenConfigSchema", () => {
  it("asks for k eigenvalues, matrix-free by default, and takes no full-spectrum fields", () => {
    expect(parseConfig(NtkEigenConfigSchema, { checkpoint: "c" }, "x")).toMatchObject({ k: 1, method: "ntvp", kernel: "trace", n: 500, memoryBudget: 4 * 2 ** 30 });
    expect(problems(NtkEigenConfigSchema, { checkpoint: "c", k: 0, eigen: true, topK: 2 })).toEqual({ k: "must be ≥ 1", eigen: "unknown field", topK: "unknown field" });
  });
});

describe("parseBytes", () => {
  it("reads bytes, SI and binary units, any case", () => {
    expect(parseBytes("4096")).toBe(4096);
    expect(parseBytes("1kB")).toBe(1000);
    expect(parseBytes("1 KiB")).toBe(1024);
    expect(parseBytes("2GiB")).toBe(2 ** 31);
    expect(parseBytes("1.5gb")).toBe(1.5e9);
    expect(parseBytes("3tib")).toBe(3 * 2 ** 40);
    expect(parseBytes("12B")).toBe(12);
    expect(parseBytes("4 parsecs")).toBeUndefined();
    expect(parseBytes("-1kB")).toBeUndefined();
  });
});
