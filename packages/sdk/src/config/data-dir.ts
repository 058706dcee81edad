import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Environment variable naming the data directory when a config gives none. */
export const DATA_DIR_ENV = "GOLDPAN_DATA";

/**
 * The data bundled with the repository, `<repo>/data`. This file sits at the same depth in
 * `src/config/` and `dist/config/`, so the path is right for both.
 */
export const BUNDLED_DATA_DIR: string = fileURLToPath(new URL("../../../../data", import.meta.url));

/**
 * The data directory to use, as an absolute path: the explicit value if given, else
 * `$GOLDPAN_DATA` if set and non-empty, else the bundled `<repo>/data`.
 */
export function resolveDataDir(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  if (explicit !== undefined && explicit !== "") return resolve(explicit);
  const fromEnv = env[DATA_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  return BUNDLED_DATA_DIR;
}

/** Like {@link resolveDataDir} without the bundled fallback (resume keeps the checkpoint's). */
export function resolveDataDirOverride(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  if (explicit !== undefined && explicit !== "") return resolve(explicit);
  const fromEnv = env[DATA_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  return undefined;
}
