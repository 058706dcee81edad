import { z } from "zod";
import * as f from "./fields.js";

/** Training-label modes; the core's `train::LABELS`. */
export const LABELS = ["true", "random", "random-redraw"] as const;

/** Measurements a run can take along the way; the core's `train::DIAGNOSTICS`. */
export const DIAGNOSTICS = ["eq3", "ntk", "swing", "speed"] as const;

/** One training run. Defaults live here and nowhere else. */
export const TrainConfigSchema = z
  .strictObject({
    model: f.modelName().default("lenet5").describe("Model to train; `goldpan models` lists them."),
    dataset: f.dataset().default("mnist").describe("Dataset, a folder under the data directory."),
    dataDir: f.dataDir(),
    epochs: f.positiveInt().default(1).describe("Passes over the training set."),
    batchSize: f.positiveInt().default(64).describe("Images per SGD step."),
    lr: z
      .number({ error: "must be a number" })
      .positive({ error: "must be > 0" })
      .default(0.01)
      .describe("SGD learning rate."),
    momentum: z
      .number({ error: "must be a number" })
      .min(0, { error: "must be in [0, 1)" })
      .lt(1, { error: "must be in [0, 1)" })
      .default(0.9)
      .describe("SGD momentum, in [0, 1)."),
    weightDecay: z
      .number({ error: "must be a number" })
      .min(0, { error: "must be ≥ 0" })
      .default(5e-4)
      .describe("L2 weight decay."),
    nesterov: z.boolean({ error: "must be true or false" }).default(false).describe("Use Nesterov momentum."),
    seed: f.seed().default(0).describe("Seed for initialisation and shuffling; same seed, same weights."),
    device: f.device().default("cpu").describe("Where to compute."),
    outDir: f
      .path()
      .optional()
      .describe("Run directory for checkpoints (last.safetensors, epoch-<N>.safetensors); none written if unset."),
    checkpointEvery: f.positiveInt().optional().describe("Also checkpoint every N steps (each epoch end always is)."),
    progressEvery: f.positiveInt().default(50).describe("Report progress every N steps."),
    trainLimit: f.positiveInt().optional().describe("Use only the first N training images."),
    testLimit: f.positiveInt().optional().describe("Use only the first N test images."),
    labels: z
      .enum(LABELS, { error: `must be one of ${LABELS.join(", ")}` })
      .default("true")
      .describe(
        "Training labels: true, random (uniform, fixed per image, from the seed) or random-redraw (drawn every epoch); test metrics use the true labels.",
      ),
    diagnostics: z
      .array(z.enum(DIAGNOSTICS, { error: `must be one of ${DIAGNOSTICS.join(", ")}` }), { error: "must be a list" })
      .optional()
      .describe(
        "Measurements taken along the run on the probe set and reported as diagnostics progress events: eq3 (the paper's Eq. 3: curvature along the gradient, gradient robustness, minibatch noise), ntk (the empirical NTK's top eigenvalues, trace, smallest eigenvalue, positive-definite blocks), swing (predicted-class histogram; also over the training set at each epoch's end), speed (function speed: KL between the predictions before and after the step, and the error rate). They leave the weights as they would be without.",
      ),
    diagnosticsEvery: f.positiveInt().default(50).describe("Take the diagnostics every N steps (at steps 0, N, 2N, …)."),
    diagnosticsSamples: f.positiveInt().default(1000).describe("Size of the diagnostics' fixed probe set (the first training images)."),
    diagnosticsAlpha: z
      .number({ error: "must be a number" })
      .positive({ error: "must be > 0" })
      .optional()
      .describe("Step size α of Eq. 3's quantities; default the learning rate."),
  })
  .refine((c) => !(c.nesterov && c.momentum === 0), {
    path: ["nesterov"],
    error: "needs momentum > 0",
    // Also when other fields are bad, so that one pass reports every problem.
    when: (payload) => {
      const v = payload.value as { nesterov?: unknown; momentum?: unknown };
      return v !== null && typeof v === "object" && v.nesterov === true && v.momentum === 0;
    },
  });

/** A validated training config, defaults filled in. */
export type TrainConfig = z.output<typeof TrainConfigSchema>;
/** What callers may pass: every field with a default is optional. */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
