/** Paths of an analysis config (Hessian, NTK) as the core gets them. */
import { resolve } from "node:path";
import { resolveDataDirOverride } from "./config/index.js";

/** `checkpoint` and `outDir` absolute; `dataDir` the given one or `$GOLDPAN_DATA`, else left out
 * (the core then reads the checkpoint's). */
export function resolveAnalysisPaths<C extends { checkpoint: string; dataDir?: string | undefined; outDir?: string | undefined }>(config: C): C {
  const c = { ...config, checkpoint: resolve(config.checkpoint) };
  const dataDir = resolveDataDirOverride(config.dataDir);
  if (dataDir === undefined) delete c.dataDir;
  else c.dataDir = dataDir;
  if (config.outDir !== undefined) c.outDir = resolve(config.outDir);
  return c;
}
