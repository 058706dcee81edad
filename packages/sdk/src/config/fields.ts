/**
 * Field schemas shared by several configs. Messages say what a valid value is, so that an
 * `E_CONFIG` error reads as a to-do list.
 */
import { z } from "zod";

/** Datasets the core reads (`crates/core/src/data/mod.rs` `DATASETS`). */
export const DATASETS = ["mnist", "fashion-mnist", "usps", "svhn"] as const;

/** Devices the core knows; "cuda" needs a build with the `cuda` feature. */
export const DEVICES = ["cpu", "cuda"] as const;

export const positiveInt = () =>
  z.int({ error: "must be a whole number" }).min(1, { error: "must be ≥ 1" });

export const nonNegativeInt = () =>
  z.int({ error: "must be a whole number" }).min(0, { error: "must be ≥ 0" });

export const path = () => z.string({ error: "must be a path" }).min(1, { error: "must not be empty" });

export const modelName = () =>
  z.string({ error: "must be a model name (see `goldpan models`)" }).min(1, { error: "must not be empty" });

export const dataset = () =>
  z.enum(DATASETS, { error: `must be one of ${DATASETS.join(", ")}` });

export const device = () => z.enum(DEVICES, { error: `must be one of ${DEVICES.join(", ")}` });

export const seed = () =>
  z
    .int({ error: "must be a whole number" })
    .min(0, { error: "must be ≥ 0" })
    .max(2 ** 32 - 1, { error: "must be ≤ 4294967295 (2^32 - 1)" });

export const dataDir = () =>
  path()
    .optional()
    .describe("Directory with one folder per dataset (mnist/…); default $GOLDPAN_DATA, else the bundled data/.");

/** One of `values`. */
export const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(", ")}` });

/** The data directory of an analysis of a checkpoint. */
export const checkpointDataDir = () =>
  path().optional().describe("Data directory; default $GOLDPAN_DATA, else the one the checkpoint was trained on.");
