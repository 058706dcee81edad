import { describe, expect, it } from "vitest";
import { COMMANDS, SFDA_COMMANDS, type HelpTopic } from "./args.js";
import { helpText } from "./help.js";

const topics: HelpTopic[] = [...Object.values(COMMANDS), ...Object.values(SFDA_COMMANDS)].map((s) => s.name);

describe("help", () => {
  it("lists every command and the exit codes", () => {
    const text = helpText();
    for (const name of Object.keys(COMMANDS)) expect(text).toContain(`  ${name}  `);
    expect(text).toContain("Exit codes:");
    expect(text).toContain("130");
    expect(text).toContain("GOLDPAN_DATA");
  });

  it("shows each command's flags with the schema's descriptions and defaults", () => {
    const train = helpText("train");
    expect(train).toContain("--batch-size <n>");
    expect(train).toMatch(/--lr <x> +SGD learning rate\. \(default: 0\.01\)/);
    expect(train).toContain("--device cpu|cuda");
    expect(train).toContain("(default: runs/<timestamp>)");
    expect(train).toContain("--resume <checkpoint>");
    for (const spec of [...Object.values(COMMANDS), ...Object.values(SFDA_COMMANDS)]) {
      const text = helpText(spec.name);
      for (const f of spec.flags) expect(text).toContain(`--${f.name}`);
      expect(text).toContain("Exit codes:");
    }
  });

  it("documents hessian and training diagnostics", () => {
    const text = helpText("hessian");
    expect(text).toContain("<checkpoint>");
    expect(text).toMatch(/--top-k <n> +Top eigenpairs to compute \(Lanczos\); 0 for none\. \(default: 5\)/);
    expect(text).toContain("--out <file-or-dir>");
    expect(text).toContain("(default: <checkpoint dir>/hessian.json)");
    expect(text).toContain("--precision f32|f64");
    expect(text).toMatch(/^  --trace +/m);
    const train = helpText("train");
    expect(train).toContain("--diagnostics <a,b,…>");
    expect(train).toMatch(/--every <n> +Take the diagnostics every N steps/);
    expect(train).toContain("--diagnostics-samples <n>");
    expect(train).toContain("--diagnostics-alpha <x>");
  });

  it("documents ntk and the tracking flags", () => {
    const text = helpText("ntk");
    expect(text).toContain("<checkpoint>");
    expect(text).toContain("--kernel full|blocks|trace");
    expect(text).toContain("--method jacobian|structured|ntvp");
    expect(text).toMatch(/--memory-budget <bytes> +Bytes the kernel/);
    expect(text.replace(/\s+/g, " ")).toContain("(default: 4GiB)");
    expect(text.replace(/\s+/g, " ")).toContain("(default: <checkpoint dir>/ntk)");
    expect(text).toContain("--layers <a,b,…>");
    expect(text).toMatch(/^  --no-eigen +Skip the full eigendecomposition/m);
    expect(text).toContain("--n <n>");
    expect(helpText()).toMatch(/^  ntk +Compute a checkpoint's empirical neural tangent kernel/m);
    const train = helpText("train");
    expect(train).toMatch(/--track <a,b,…> +The same as --diagnostics/);
    expect(train.replace(/\s+/g, " ")).toContain("swing: the predicted-class histogram");
  });

  it("documents sfda: its commands, the methods, valued booleans, lists and nested flags", () => {
    const sfda = helpText("sfda");
    for (const name of Object.keys(SFDA_COMMANDS)) expect(sfda).toMatch(new RegExp(`^  ${name}  `, "m"));
    const flat = sfda.replace(/\s+/g, " ");
    for (const method of ["none", "adabn", "kl-only", "pul", "shot-im", "shot"]) expect(flat).toContain(`${method} (`);
    expect(sfda).toContain("Target labels are never used except to report test accuracy.");
    const adapt = helpText("sfda adapt");
    expect(adapt).toContain("--pul-freeze-classifier true|false");
    expect(adapt).toContain("--pul-attach backbone|bottleneck");
    expect(adapt).toContain("--shot-cls-par <x>");
    expect(adapt).toContain("--from <checkpoint>");
    expect(adapt).toMatch(/--pul-classes <n> +Number of random classes; default 3\./);
    const table = helpText("sfda table");
    expect(table).toContain("--pairs <a,b,…>");
    expect(table).toContain("(default: m2u,u2m,s2m)");
    expect(table).toContain("(default: runs/table)");
  });

  it("keeps lines within 100 columns", () => {
    for (const topic of [undefined, ...topics]) {
      for (const line of helpText(topic).split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
    }
  });
});
