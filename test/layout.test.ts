/**
 * Arrows point one way — core → bindings → sdk → {sfda} → cli: each package imports only the
 * packages below it (and Node, its own files, its declared libraries), and in the SDK only
 * binding.ts touches the addon. Static: reads the sources, needs no build.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./helpers.js";

const LOCAL = [/^node:/, /^\.\.?\//, /^vitest$/];
const RULES: Record<string, RegExp[]> = {
  "packages/sdk/src": [/^zod$/, /^@goldpan\/binding$/],
  "packages/sfda/src": [/^zod$/, /^@goldpan\/sdk$/],
  "packages/cli/src": [/^@goldpan\/sdk$/, /^@goldpan\/sfda$/, /^cli-progress$/],
};

/** Every module specifier `text` imports or re-exports. */
function specifiers(text: string): string[] {
  return [
    ...text.matchAll(/^\s*(?:import|export)\b[^"';]*?\bfrom\s*"([^"]+)"/gm),
    ...text.matchAll(/^\s*import\s*"([^"]+)"/gm),
    ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1]!);
}

describe("package imports", () => {
  for (const [dir, allowed] of Object.entries(RULES)) {
    it(`${dir} imports only ${allowed.map((r) => r.source.replace(/[\^$\\]/g, "")).join(", ")}, Node and its own files`, () => {
      const src = join(REPO, dir);
      const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
      expect(files.length).toBeGreaterThan(5);
      for (const file of files) {
        const text = readFileSync(join(src, file), "utf8");
        for (const spec of specifiers(text)) {
          expect([...LOCAL, ...allowed].some((re) => re.test(spec)), `${dir}/${file} imports ${spec}`).toBe(true);
        }
        if (dir === "packages/sdk/src" && file !== "binding.ts" && !file.endsWith(".test.ts")) {
          expect(text, file).not.toMatch(/@goldpan\/binding"/);
        }
      }
    });
  }
});
