import { z } from "zod";
import * as f from "./fields.js";

export const SPLITS = ["train", "test"] as const;

/** Evaluating a checkpoint on one split. */
export const EvalConfigSchema = z.strictObject({
  checkpoint: f.path().describe("Checkpoint file (.safetensors) to evaluate."),
  dataDir: f.dataDir(),
  split: z
    .enum(SPLITS, { error: `must be one of ${SPLITS.join(", ")}` })
    .default("test")
    .describe("Which split to evaluate on."),
  limit: f.positiveInt().optional().describe("Use only the first N images of the split."),
  batchSize: f.positiveInt().default(256).describe("Images per forward pass."),
  device: f.device().default("cpu").describe("Where to compute."),
});

export type EvalConfig = z.output<typeof EvalConfigSchema>;
export type EvalConfigInput = z.input<typeof EvalConfigSchema>;
