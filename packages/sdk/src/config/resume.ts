import { z } from "zod";
import * as f from "./fields.js";

/** Continuing a run from a checkpoint; everything not given comes from the checkpoint's config. */
export const ResumeConfigSchema = z.strictObject({
  checkpoint: f.path().describe("Checkpoint file (.safetensors) to resume from."),
  dataDir: z
    .string({ error: "must be a path" })
    .min(1, { error: "must not be empty" })
    .optional()
    .describe("Data directory; default $GOLDPAN_DATA, else the one the run used."),
  epochs: f.positiveInt().optional().describe("Total epochs of the run (not additional ones); default the run's."),
  outDir: f.path().optional().describe("Where to write further checkpoints; default the run's."),
  device: f.device().optional().describe("Where to compute; default the run's."),
});

export type ResumeConfig = z.output<typeof ResumeConfigSchema>;
export type ResumeConfigInput = z.input<typeof ResumeConfigSchema>;
