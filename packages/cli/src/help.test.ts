import { describe, expect, it } from "vitest";
import { COMMANDS, type CommandName } from "./args.js";
import { helpText } from "./help.js";

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
    for (const name of Object.keys(COMMANDS) as CommandName[]) {
      const text = helpText(name);
      for (const f of COMMANDS[name].flags) expect(text).toContain(`--${f.name}`);
      expect(text).toContain("Exit codes:");
    }
  });

  it("keeps lines within 100 columns", () => {
    for (const topic of [undefined, ...(Object.keys(COMMANDS) as CommandName[])]) {
      for (const line of helpText(topic).split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
    }
  });
});
