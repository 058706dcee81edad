import { describe, expect, it } from "vitest";
import { TrainConfigSchema, describeFields } from "@goldpan/sdk";
import { flagForPath, flagName, flagsFromFields } from "./flags.js";

describe("flags", () => {
  it("kebab-cases keys, with data and out renamed", () => {
    expect(flagName("batchSize")).toBe("batch-size");
    expect(flagName("dataDir")).toBe("data");
    expect(flagName("outDir")).toBe("out");
    expect(flagForPath(["weightDecay"])).toBe("--weight-decay");
    expect(flagForPath([0, "a"])).toBe("0.a");
    expect(flagForPath([])).toBe("");
  });

  it("name nested fields and lists by their flag", () => {
    expect(flagName("pul.freezeClassifier")).toBe("pul-freeze-classifier");
    expect(flagForPath(["pul", "attach"])).toBe("--pul-attach");
    expect(flagForPath(["shot", "clsPar"])).toBe("--shot-cls-par");
    expect(flagForPath(["pairs", 1])).toBe("--pairs");
  });

  it("take kind, choices, default and description from the schema", () => {
    const flags = flagsFromFields(describeFields(TrainConfigSchema), { overrides: { outDir: { defaultText: "runs/<timestamp>" } } });
    const byName = Object.fromEntries(flags.map((f) => [f.name, f]));
    expect(byName.device).toMatchObject({ key: "device", kind: "enum", choices: ["cpu", "cuda"], defaultText: "cpu" });
    expect(byName.lr).toMatchObject({ kind: "number", defaultText: "0.01", description: "SGD learning rate." });
    expect(byName.nesterov).not.toHaveProperty("defaultText");
    expect(byName.out).toMatchObject({ defaultText: "runs/<timestamp>" });
  });
});
