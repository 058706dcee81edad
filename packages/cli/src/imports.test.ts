/** Arrows point one way: the CLI reaches the core only through @goldpan/sdk (and @goldpan/sfda, above it). */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const SRC = fileURLToPath(new URL(".", import.meta.url));
const ALLOWED = [/^node:/, /^@goldpan\/sdk$/, /^@goldpan\/sfda$/, /^cli-progress$/, /^\.\.?\//, /^vitest$/];

it("imports only the SDK, @goldpan/sfda, cli-progress, Node and its own files", () => {
  const files = readdirSync(SRC, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  expect(files.length).toBeGreaterThan(5);
  for (const file of files) {
    const text = readFileSync(join(SRC, file), "utf8");
    const specs = [
      ...text.matchAll(/^\s*(?:import|export)\b[^"';]*?\bfrom\s*"([^"]+)"/gm),
      ...text.matchAll(/^\s*import\s*"([^"]+)"/gm),
      ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
    ].map((m) => m[1]!);
    for (const spec of specs) {
      expect(ALLOWED.some((re) => re.test(spec)), `${file} imports ${spec}`).toBe(true);
    }
  }
});
