import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeFields } from "./describe.js";
import { TrainConfigSchema } from "./train.js";

describe("describeFields", () => {
  it("reads kind, choices, default and description", () => {
    const fields = Object.fromEntries(describeFields(TrainConfigSchema).map((f) => [f.key, f]));
    expect(fields.epochs).toMatchObject({ kind: "int", default: 1, optional: true, description: "Passes over the training set." });
    expect(fields.lr).toMatchObject({ kind: "number", default: 0.01 });
    expect(fields.nesterov).toMatchObject({ kind: "boolean", default: false });
    expect(fields.device).toMatchObject({ kind: "enum", choices: ["cpu", "cuda"], default: "cpu" });
    expect(fields.outDir).toMatchObject({ kind: "string", optional: true });
    expect(fields.outDir).not.toHaveProperty("default");
    expect(Object.keys(fields)).toEqual(Object.keys(TrainConfigSchema.shape));
  });

  it("marks required fields", () => {
    const [f] = describeFields(z.object({ checkpoint: z.string().describe("c") }));
    expect(f).toEqual({ key: "checkpoint", kind: "string", optional: false, description: "c" });
  });

  it("describes lists of choices and the fields of nested objects, dotted", () => {
    const schema = z.object({
      pairs: z.array(z.enum(["a", "b"])).optional().describe("p"),
      pul: z.object({ classes: z.int().describe("k"), attach: z.enum(["x", "y"]).default("x").describe("w") }).optional(),
      shot: z.object({ clsPar: z.number().describe("c") }),
    });
    expect(describeFields(schema)).toEqual([
      { key: "pairs", kind: "list", choices: ["a", "b"], optional: true, description: "p" },
      { key: "pul.classes", kind: "int", optional: true, description: "k" },
      { key: "pul.attach", kind: "enum", choices: ["x", "y"], optional: true, default: "x", description: "w" },
      { key: "shot.clsPar", kind: "number", optional: false, description: "c" },
    ]);
  });

  it("describes lists of text, and a converted value (number or text) as text", () => {
    const schema = z.object({
      layers: z.array(z.string()).default([]).describe("l"),
      size: z.union([z.int(), z.string()]).transform(Number).default(4).describe("s"),
    });
    expect(describeFields(schema)).toEqual([
      { key: "layers", kind: "list", optional: true, default: [], description: "l" },
      { key: "size", kind: "string", optional: true, default: 4, description: "s" },
    ]);
  });

  it("refuses field types it cannot describe", () => {
    expect(() => describeFields(z.object({ x: z.array(z.number()) }))).toThrow(/field x/);
    expect(() => describeFields(z.object({ o: z.object({ y: z.map(z.string(), z.string()) }) }))).toThrow(/field o\.y/);
  });
});
