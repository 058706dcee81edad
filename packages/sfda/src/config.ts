/**
 * Configs of source training and adaptation, mirroring the core's `SourceConfig` / `AdaptConfig`
 * (`crates/core/src/sfda/config.rs`) field by field, camelCase.
 *
 * Only what must be given is required (`source`; `from`, `target`, `method`). Every other field is
 * optional *without* a default here: left out, it is left to the core, whose defaults are SHOT's
 * and the paper's (the descriptions say which). Ranges are checked here, so that one pass lists
 * every bad field; the core checks them again.
 */
import { dataDir, device, path, positiveInt, seed } from "@goldpan/sdk";
import { z } from "zod";

/** The digit domains (`crates/core/src/sfda/config.rs` `check_dataset`). */
export const DOMAINS = ["mnist", "usps", "svhn"] as const;
export type Domain = (typeof DOMAINS)[number];

/** SHOT's digit networks, the ones with a bottleneck/classifier split. */
export const SFDA_MODELS = ["lenet-base", "dtn"] as const;

/** Adaptation methods, in the order of the table's rows. */
export const METHODS = ["none", "adabn", "kl-only", "pul", "shot-im", "shot"] as const;
export type Method = (typeof METHODS)[number];

/** How the paper names each method's row. */
export const METHOD_LABELS: Readonly<Record<Method, string>> = {
  none: "Source only",
  adabn: "AdaBN",
  "kl-only": "KL-only",
  pul: "PUL",
  "shot-im": "SHOT-IM",
  shot: "SHOT",
};

/** Where PUL's projector reads the features. */
export const ATTACH = ["backbone", "bottleneck"] as const;
/** How PUL draws its random labels. */
export const PUL_LABELS = ["fixed", "redraw"] as const;

/** An enum whose message says what is allowed, and that it is required when it is missing. */
export function choice<const T extends readonly [string, ...string[]]>(values: T) {
  const allowed = values.join(", ");
  return z.enum(values, {
    error: (issue) => (issue.input === undefined ? `required: one of ${allowed}` : `${JSON.stringify(issue.input)} is not one of ${allowed}`),
  });
}

const num = () => z.number({ error: "must be a number" });
const positive = () => num().positive({ error: "must be > 0" });
const nonNegative = () => num().min(0, { error: "must be ≥ 0" });
const unitInterval = (lowOpen: boolean) =>
  lowOpen
    ? num().gt(0, { error: "must be in (0, 1)" }).lt(1, { error: "must be in (0, 1)" })
    : num().min(0, { error: "must be in [0, 1)" }).lt(1, { error: "must be in [0, 1)" });
const flag = () => z.boolean({ error: "must be true or false" });

/** SGD fields both stages share; left out, the core uses SHOT's Nesterov SGD. */
const sgd = {
  batchSize: positiveInt().optional().describe("Images per SGD step; default 64."),
  lr: positive()
    .optional()
    .describe(
      "Initial learning rate, decayed as (1 + 10p)^-0.75; default 0.01 (source training, shot, shot-im) or 0.001 (pul, kl-only).",
    ),
  momentum: unitInterval(false).optional().describe("SGD momentum, in [0, 1); default 0.9."),
  weightDecay: nonNegative().optional().describe("L2 weight decay; default 0.001."),
  nesterov: flag().optional().describe("Nesterov momentum; default true."),
};

/** SHOT's source training (`uda_digit.py` `train_source`). */
export const SourceConfigSchema = z.strictObject({
  source: choice(DOMAINS).describe("Source domain, trained with its labels."),
  model: choice(SFDA_MODELS)
    .optional()
    .describe("Network; default SHOT's: lenet-base for mnist and usps (1×28×28), dtn for svhn (3×32×32)."),
  dataDir: dataDir(),
  epochs: positiveInt().optional().describe("Passes over the source training split; default 30."),
  ...sgd,
  smoothing: unitInterval(false).optional().describe("Label smoothing of the cross-entropy, in [0, 1); default 0.1."),
  valFraction: unitInterval(true)
    .optional()
    .describe("Share of the source training split held out to pick the best epoch, in (0, 1); default 0.1."),
  augment: flag().optional().describe("Random crop and rotation of training images; default on for usps only (as SHOT)."),
  seed: seed().optional().describe("Seed of initialisation, split, order and augmentation; default 0."),
  device: device().optional().describe("Where to compute; default cpu."),
  outDir: path().optional().describe("Where source.safetensors (the best epoch's model) goes; none written if unset."),
  progressEvery: positiveInt().optional().describe("Report progress every N steps; default 100."),
  trainLimit: positiveInt().optional().describe("Use only the first N source training images."),
});

/** PUL's options; the paper fixes classes (3), temperature (4) and epochs (2). */
export const PulOptionsSchema = z.strictObject({
  classes: z
    .int({ error: "must be a whole number" })
    .min(2, { error: "must be ≥ 2" })
    .optional()
    .describe("Number of random classes; default 3."),
  temperature: positive().optional().describe("Distillation temperature; default 4."),
  lambda: nonNegative().optional().describe("Weight of the distillation term (it includes the T² factor); default 0.1."),
  attach: choice(ATTACH).optional().describe("Projector input: backbone (netF) or bottleneck (netB) features; default backbone."),
  hidden: positiveInt().optional().describe("Hidden width of the projector; default 256."),
  labels: choice(PUL_LABELS).optional().describe("Random labels drawn once (fixed) or every epoch (redraw); default fixed."),
  freezeClassifier: flag().optional().describe("Keep the classifier frozen; default true."),
});

/** SHOT's target options (`uda_digit.py` `train_target`). */
export const ShotOptionsSchema = z.strictObject({
  clsPar: nonNegative().optional().describe("Weight of SHOT's pseudo-label cross-entropy; default 0.1."),
  entPar: nonNegative().optional().describe("Weight of the information-maximisation loss; default 1."),
  diversity: flag().optional().describe("Include IM's diversity term; default true."),
  epsilon: nonNegative().optional().describe("ε inside the logarithms of the IM terms; default 1e-5."),
});

/** Methods that take gradient steps (the others only evaluate or re-estimate batch norms). */
export const TRAINING_METHODS: ReadonlySet<Method> = new Set(["kl-only", "pul", "shot-im", "shot"]);

/** Adapting a source model to unlabelled target data. */
export const AdaptConfigSchema = z
  .strictObject({
    method: choice(METHODS).describe(
      "none (source only), adabn, kl-only, pul, shot-im or shot; see `goldpan sfda --help`.",
    ),
    from: path().describe("The source model (source.safetensors from `goldpan sfda source`)."),
    target: choice(DOMAINS).describe("Target domain: its training split without labels; its test split only to report accuracy."),
    dataDir: dataDir(),
    epochs: positiveInt().optional().describe("Passes over the target training split; default 2 for pul and kl-only, 30 for shot and shot-im."),
    ...sgd,
    pul: PulOptionsSchema.optional(),
    shot: ShotOptionsSchema.optional(),
    seed: seed().optional().describe("Seed of the order, dropout, projector and random labels; default 0."),
    device: device().optional().describe("Where to compute; default cpu."),
    outDir: path().optional().describe("Where adapted.safetensors goes; none written if unset."),
    progressEvery: positiveInt().optional().describe("Report progress every N steps; default 100."),
    trainLimit: positiveInt().optional().describe("Use only the first N target training images."),
    testLimit: positiveInt().optional().describe("Use only the first N target test images."),
  })
  .refine((c) => !(TRAINING_METHODS.has(c.method) && c.batchSize === 1), {
    path: ["batchSize"],
    error: "must be ≥ 2 for a method that trains (batch norms use batch statistics)",
    // Also when other fields are bad, so that one pass reports every problem.
    when: (payload) => {
      const v = payload.value as { method?: unknown; batchSize?: unknown } | null;
      return v !== null && typeof v === "object" && v.batchSize === 1 && TRAINING_METHODS.has(v.method as Method);
    },
  });

export type SourceConfig = z.output<typeof SourceConfigSchema>;
export type SourceConfigInput = z.input<typeof SourceConfigSchema>;
export type AdaptConfig = z.output<typeof AdaptConfigSchema>;
export type AdaptConfigInput = z.input<typeof AdaptConfigSchema>;
export type PulOptions = z.output<typeof PulOptionsSchema>;
export type ShotOptions = z.output<typeof ShotOptionsSchema>;
