/**
 * The one place that loads `@goldpan/binding`. It loads lazily, on the first call that needs the
 * core, so validation, errors and types work (and are tested) without the native addon.
 */
import { createRequire } from "node:module";
import type * as Binding from "@goldpan/binding";
import { GoldpanError } from "./errors.js";

export type { Binding };

let cached: typeof Binding | undefined;

export function loadBinding(): typeof Binding {
  if (cached === undefined) {
    try {
      cached = createRequire(import.meta.url)("@goldpan/binding") as typeof Binding;
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new GoldpanError(
        "E_INTERNAL",
        `cannot load goldpan's native addon (@goldpan/binding): ${reason}\nBuild it with \`npm run build\` at the repository root.`,
        { cause: e },
      );
    }
  }
  return cached;
}
