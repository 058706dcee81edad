import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BUNDLED_DATA_DIR, resolveDataDir, resolveDataDirOverride } from "./data-dir.js";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));

describe("resolveDataDir", () => {
  it("prefers the explicit value, made absolute", () => {
    expect(resolveDataDir("some/dir", { GOLDPAN_DATA: "/env" })).toBe(resolve("some/dir"));
  });

  it("falls back to $GOLDPAN_DATA", () => {
    expect(resolveDataDir(undefined, { GOLDPAN_DATA: "/env/data" })).toBe("/env/data");
    expect(resolveDataDir("", { GOLDPAN_DATA: "rel" })).toBe(resolve("rel"));
  });

  it("then to the bundled <repo>/data", () => {
    expect(resolveDataDir(undefined, {})).toBe(BUNDLED_DATA_DIR);
    expect(resolveDataDir(undefined, { GOLDPAN_DATA: "" })).toBe(BUNDLED_DATA_DIR);
    expect(resolve(BUNDLED_DATA_DIR)).toBe(join(repo, "data"));
    expect(existsSync(join(BUNDLED_DATA_DIR, "mnist"))).toBe(true);
  });

  it("reads process.env by default", () => {
    const before = process.env.GOLDPAN_DATA;
    try {
      process.env.GOLDPAN_DATA = "/from/process/env";
      expect(resolveDataDir(undefined)).toBe("/from/process/env");
    } finally {
      if (before === undefined) delete process.env.GOLDPAN_DATA;
      else process.env.GOLDPAN_DATA = before;
    }
  });

  it("has no bundled fallback for resume overrides", () => {
    expect(resolveDataDirOverride(undefined, {})).toBeUndefined();
    expect(resolveDataDirOverride(undefined, { GOLDPAN_DATA: "/e" })).toBe("/e");
    expect(resolveDataDirOverride("/x", { GOLDPAN_DATA: "/e" })).toBe("/x");
  });
});
