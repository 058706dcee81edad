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

  it("refuses field types it cannot describe", () => {
    expect(() => describeFields(z.object({ x: z.array(z.string()) }))).toThrow(/field x/);
  });
});
