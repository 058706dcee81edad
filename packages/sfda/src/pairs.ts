/** The digit adaptation pairs of the table. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Domain } from "./config.js";

export const PAIR_NAMES = ["m2u", "u2m", "s2m"] as const;
export type PairName = (typeof PAIR_NAMES)[number];

export interface Pair {
  source: Domain;
  target: Domain;
  /** As the paper heads its columns. */
  label: string;
}

export const PAIRS: Readonly<Record<PairName, Pair>> = {
  m2u: { source: "mnist", target: "usps", label: "M→U" },
  u2m: { source: "usps", target: "mnist", label: "U→M" },
  s2m: { source: "svhn", target: "mnist", label: "S→M" },
};

/** The files the core reads for SVHN (`crates/core/src/data/svhn.rs`). */
export const SVHN_FILES = ["train_32x32.mat", "test_32x32.mat"] as const;

/** Why `pair` cannot run with the data in `dataDir`, or undefined when it can. Only SVHN is
 * optional: MNIST and USPS are bundled, and a missing file there is a data error, not a skip. */
export function missingData(pair: PairName, dataDir: string, exists: (path: string) => boolean = existsSync): string | undefined {
  const { source, target } = PAIRS[pair];
  if (source !== "svhn" && target !== "svhn") return undefined;
  const dir = join(dataDir, "svhn");
  return SVHN_FILES.every((f) => exists(join(dir, f))) ? undefined : `SVHN not present in ${dir}`;
}
