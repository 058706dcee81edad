/**
 * argv → a command object. Pure: no I/O, no environment, no addon; validation of values is the
 * SDK's (zod) and happens when the command runs. Throws `GoldpanError` `E_CONFIG` on bad usage.
 */
import { parseArgs as nodeParseArgs } from "node:util";
import {
  EvalConfigSchema,
  GoldpanError,
  HessianConfigSchema,
  NtkConfigSchema,
  ResumeConfigSchema,
  TrainConfigSchema,
  describeFields,
} from "@goldpan/sdk";
import { AdaptConfigSchema, SourceConfigSchema, TableOptionsSchema } from "@goldpan/sfda";
import { JSON_FLAG, flagsFromFields, type FlagSpec } from "./flags.js";

export type CommandName = "train" | "eval" | "hessian" | "ntk" | "models" | "info" | "sfda";
export type SfdaCommandName = "source" | "adapt" | "table";
/** What `--help` and `goldpan help <topic>` can show. */
export type HelpTopic = CommandName | `sfda ${SfdaCommandName}`;

export type Command =
  | { name: "help"; topic?: HelpTopic }
  | { name: "version" }
  /** Raw (unvalidated) config input built from the flags. */
  | { name: "train"; config: Record<string, unknown>; json: boolean }
  | { name: "resume"; config: Record<string, unknown>; json: boolean }
  | { name: "eval"; config: Record<string, unknown>; json: boolean }
  /** `out`: where the report goes (a .json file or a directory), if given. */
  | { name: "hessian"; config: Record<string, unknown>; out?: string; json: boolean }
  | { name: "ntk"; config: Record<string, unknown>; json: boolean }
  | { name: "models"; json: boolean }
  | { name: "info"; checkpoint: string; json: boolean }
  | { name: "sfda-source"; config: Record<string, unknown>; json: boolean }
  | { name: "sfda-adapt"; config: Record<string, unknown>; json: boolean }
  /** Raw (unvalidated) table options built from the flags. */
  | { name: "sfda-table"; options: Record<string, unknown>; json: boolean };

export interface CommandSpec {
  name: HelpTopic;
  summary: string;
  usage: string[];
  /** The positional argument, if the command takes one. */
  positional?: { name: string; description: string };
  flags: FlagSpec[];
  /** Extra help paragraphs. */
  notes?: string[];
  /** For a command that only groups others (`sfda`): those, by name. */
  subcommands?: Readonly<Record<string, CommandSpec>>;
}

const RESUME_FLAG: FlagSpec = {
  name: "resume",
  key: undefined,
  kind: "string",
  description:
    "Continue the run saved in this checkpoint; only --epochs (total), --data, --out and --device may be given with it.",
};

const trainFlags = flagsFromFields(describeFields(TrainConfigSchema), {
  overrides: {
    outDir: {
      description: "Run directory: config.json, metrics.jsonl and the checkpoints (last.safetensors, epoch-<N>.safetensors).",
      defaultText: "runs/<timestamp>",
    },
  },
}).flatMap((f) => (f.key === "diagnostics" ? [f, { ...f, name: "track", description: "The same as --diagnostics (both may be given: one list)." }] : [f]));

/** Flags that may accompany --resume: the resume config's fields. */
const resumeKeys: ReadonlySet<string> = new Set(
  describeFields(ResumeConfigSchema)
    .map((f) => f.key)
    .filter((k) => k !== "checkpoint"),
);

/** `goldpan hessian` computes this many eigenpairs unless told otherwise (the core's default is none). */
export const HESSIAN_TOP_K = 5;

const HESSIAN_OUT_FLAG: FlagSpec = {
  name: "out",
  key: undefined,
  kind: "string",
  valueName: "file-or-dir",
  defaultText: "<checkpoint dir>/hessian.json",
  description: "Where the full report goes as JSON: a .json file, or a directory to write hessian.json in.",
};

/** `--no-eigen`: the NTK's `eigen` field, true unless this switch is given. */
const NO_EIGEN_FLAG: FlagSpec = {
  name: "no-eigen",
  key: undefined,
  kind: "boolean",
  description: "Skip the full eigendecomposition of the formed kernel (eigenvalues.npy, condition, λmin); --top-k still runs.",
};

const ntkFlags: FlagSpec[] = flagsFromFields(describeFields(NtkConfigSchema), {
  omit: ["checkpoint", "eigen"],
  overrides: {
    memoryBudget: { defaultText: "4GiB", valueName: "bytes" },
    outDir: {
      description: "Directory for kernel.npy, eigenvalues.npy, top_eigenvalues.npy and ntk.json.",
      defaultText: "<checkpoint dir>/ntk",
    },
  },
}).flatMap((f) => (f.key === "topK" ? [f, NO_EIGEN_FLAG] : [f]));

const SFDA_INTERRUPT_NOTE =
  "Ctrl-C stops after the current step and exits with 130 (a second Ctrl-C quits at once).";

export const SFDA_COMMANDS: Readonly<Record<SfdaCommandName, CommandSpec>> = {
  source: {
    name: "sfda source",
    summary: "Train a source model with SHOT's recipe (label smoothing, best held-out epoch kept).",
    usage: ["goldpan sfda source --source mnist|usps|svhn [options]"],
    flags: [
      ...flagsFromFields(describeFields(SourceConfigSchema), {
        booleanValues: true,
        overrides: {
          outDir: {
            description: "Run directory: source.safetensors (the best epoch's model), source-config.json, source-metrics.jsonl.",
            defaultText: "runs/<timestamp>",
          },
        },
      }),
      JSON_FLAG,
    ],
    notes: [
      "Options left out take the core's defaults, SHOT's for digits (shown in each description). " +
        "Progress goes to stderr; the last line of a human report is the `goldpan sfda adapt` command that adapts the model.",
      SFDA_INTERRUPT_NOTE,
    ],
  },
  adapt: {
    name: "sfda adapt",
    summary: "Adapt a source model to an unlabelled target domain (PUL, SHOT, …); report target accuracy before → after.",
    usage: ["goldpan sfda adapt --method pul --from <source.safetensors> --target usps [options]"],
    flags: [
      ...flagsFromFields(describeFields(AdaptConfigSchema), {
        booleanValues: true,
        overrides: {
          outDir: {
            description: "Run directory: adapted.safetensors, adapt-config.json, adapt-metrics.jsonl.",
            defaultText: "runs/<timestamp>",
          },
        },
      }),
      JSON_FLAG,
    ],
    notes: [
      "Target labels are never used except to report test accuracy: the target training split is read without them. " +
        "The criterion printed is the label-free one, mutual information between inputs and predictions on the target " +
        "training split. `goldpan eval <out>/adapted.safetensors` evaluates the result again.",
      SFDA_INTERRUPT_NOTE,
    ],
  },
  table: {
    name: "sfda table",
    summary: "Reproduce the Pan for Gold digit table: every method on every pair over seeds, mean ± std.",
    usage: ["goldpan sfda table [--seeds 3] [--pairs m2u,u2m,s2m] [--methods none,pul,…] [options]"],
    flags: [...flagsFromFields(describeFields(TableOptionsSchema), { booleanValues: true }), JSON_FLAG],
    notes: [
      "For each seed, each source domain's model is trained once (<out>/<source>-seed<k>/) and adapted by every method " +
        "with that seed (<out>/<pair>-seed<k>/<method>/, its result in <method>.json). Finished jobs are reused when " +
        "the same command runs again, so an interrupted table resumes. s2m needs <data>/svhn/train_32x32.mat and " +
        "test_32x32.mat and is skipped without them. Writes <out>/table.md and <out>/table.json and prints the table " +
        "(--json: the table.json object).",
      "Ctrl-C stops the running job and exits with 130; rerun the same command to continue.",
    ],
  },
};

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  train: {
    name: "train",
    summary: "Train a model, writing a run directory with config, metrics and checkpoints.",
    usage: ["goldpan train [options]", "goldpan train --resume <checkpoint> [--epochs N] [--data DIR] [--out DIR] [--device D]"],
    flags: [...trainFlags, RESUME_FLAG, JSON_FLAG],
    notes: [
      "Progress goes to stderr: a progress bar on a terminal, one line per event otherwise. " +
        "metrics.jsonl gets one JSON object per progress event as it happens.",
      "--diagnostics (or --track) eq3,ntk,swing,speed --every N measures at steps 0, N, 2N, … on a fixed probe set, " +
        "the first --diagnostics-samples training images. eq3, the paper's Eq. 3 before the step's update: ‖g‖, the " +
        "curvature gᵀHg/‖g‖² along the gradient, the cosine between the gradient and the gradient after a step of −αg " +
        "or a random step of the same length (α: --diagnostics-alpha), and the minibatch gradient's cosine with the " +
        "probe gradient. ntk: the empirical NTK of the probe set's first 128 images (top eigenvalues, trace, λmin, " +
        "positive-definite C×C blocks). swing: the predicted-class histogram and its dominant share (also over the " +
        "training set at each epoch's end). speed: the mean KL between the predictions before and after the step, " +
        "and the error rate. Each is a diagnostics event in metrics.jsonl (all the numbers) and a line on stderr.",
      "Ctrl-C stops after the current step, writes last.safetensors and exits with 130; " +
        "`goldpan train --resume <run>/last.safetensors` continues. A second Ctrl-C quits at once.",
    ],
  },
  eval: {
    name: "eval",
    summary: "Evaluate a checkpoint's loss and accuracy on a dataset split.",
    usage: ["goldpan eval <checkpoint> [options]"],
    positional: { name: "checkpoint", description: "Checkpoint file (.safetensors), e.g. runs/demo/last.safetensors." },
    flags: [...flagsFromFields(describeFields(EvalConfigSchema), { omit: ["checkpoint"] }), JSON_FLAG],
  },
  hessian: {
    name: "hessian",
    summary: "Analyse a checkpoint's loss Hessian: top eigenvalues, trace and spectral density, by exact Hessian–vector products.",
    usage: ["goldpan hessian <checkpoint> [--top-k 5] [--trace] [--density] [--samples 1000] [options]"],
    positional: { name: "checkpoint", description: "Checkpoint file (.safetensors), e.g. runs/demo/last.safetensors." },
    flags: [
      ...flagsFromFields(describeFields(HessianConfigSchema), {
        omit: ["checkpoint"],
        overrides: { topK: { defaultText: String(HESSIAN_TOP_K) } },
      }),
      HESSIAN_OUT_FLAG,
      JSON_FLAG,
    ],
    notes: [
      "The loss is the mean cross-entropy over the first --samples images of the split, at the checkpoint's weights. " +
        "Every Hessian–vector product is exact (Pearlmutter's R-operator, forward over reverse) and streams the samples " +
        "in batches of --batch-size. Top eigenvalues come from Lanczos with full reorthogonalisation, the trace from " +
        "Hutchinson's estimator, the density from stochastic Lanczos quadrature (PyHessian's three analyses); --top-k 0 " +
        "skips the eigenvalues.",
      "Prints a summary on stdout (--json: the report) and writes the full report as JSON, with the density's grid and " +
        "quadrature nodes, to --out. Progress (products done, phase) goes to stderr. Ctrl-C stops after the current " +
        "product and exits with 130.",
    ],
  },
  ntk: {
    name: "ntk",
    summary: "Compute a checkpoint's empirical neural tangent kernel: the kernel as .npy, its eigenvalues, the Eq. 7 block check.",
    usage: [
      "goldpan ntk <checkpoint> [--n 500] [--kernel full|blocks|trace] [--top-k 10] [--out DIR] [options]",
      "goldpan ntk <checkpoint> --method ntvp --top-k 10 [--n 5000]   (matrix-free: top-k only)",
    ],
    positional: { name: "checkpoint", description: "Checkpoint file (.safetensors), e.g. runs/demo/last.safetensors." },
    flags: [...ntkFlags, JSON_FLAG],
    notes: [
      "The kernel Θ(x, x') = ∇θf(x)·∇θf(x')ᵀ of the logits over the first --n images of the split, at the checkpoint's " +
        "weights in evaluation mode: full (N·C × N·C, row n·C + c), blocks (the same values as N×C×N×C) or trace (N×N, " +
        "summed over the logits). jacobian and structured form it (equal to rounding; structured never forms a linear " +
        "layer's Jacobian); ntvp never forms it and gives only --top-k eigenvalues, by Lanczos on kernel–vector " +
        "products. A kernel over --memory-budget is refused (exit 8) with what would fit.",
      "Prints a table on stdout (--json: the report) and writes kernel.npy, eigenvalues.npy, top_eigenvalues.npy " +
        "(float64, numpy.load reads them) and ntk.json to --out. Progress (phase) goes to stderr. Ctrl-C stops " +
        "the kernel after the current layer's pass, or Lanczos after the current product, and exits with 130 (the " +
        "dense eigendecomposition runs to its end; a second Ctrl-C quits at once).",
    ],
  },
  models: {
    name: "models",
    summary: "List the models goldpan can train.",
    usage: ["goldpan models [--json]"],
    flags: [JSON_FLAG],
  },
  info: {
    name: "info",
    summary: "Show what a checkpoint holds: model, dataset, epoch, step and the run's config.",
    usage: ["goldpan info <checkpoint> [--json]"],
    positional: { name: "checkpoint", description: "Checkpoint file (.safetensors)." },
    flags: [JSON_FLAG],
  },
  sfda: {
    name: "sfda",
    summary: "Source-free domain adaptation on digits: source models, PUL / SHOT / baselines, the paper's table.",
    usage: [
      "goldpan sfda source --source mnist [options]",
      "goldpan sfda adapt --method pul --from <source.safetensors> --target usps [options]",
      "goldpan sfda table [--seeds 3] [options]",
    ],
    flags: [],
    subcommands: SFDA_COMMANDS,
    notes: [
      "Methods: none (the source model as it is); adabn (batch-norm statistics re-estimated on the target data, no " +
        "gradient step); kl-only (distillation to the frozen source model alone, a control); pul (Panning through " +
        "Unstructured Labels: cross-entropy on fixed random labels through a projector plus that distillation); " +
        "shot-im (SHOT's information maximisation, classifier frozen); shot (SHOT-IM plus self-supervised pseudo-labels).",
      "Target labels are never used except to report test accuracy.",
    ],
  },
};

function isSfdaCommandName(s: string): s is SfdaCommandName {
  return Object.hasOwn(SFDA_COMMANDS, s);
}

/** The spec a help topic names. */
export function specFor(topic: HelpTopic): CommandSpec {
  return topic.startsWith("sfda ") ? SFDA_COMMANDS[topic.slice(5) as SfdaCommandName] : COMMANDS[topic as CommandName];
}

function isCommandName(s: string): s is CommandName {
  return Object.hasOwn(COMMANDS, s);
}

function usageError(message: string, command?: HelpTopic): GoldpanError {
  const hint = command === undefined ? "Run `goldpan --help` for usage." : `Run \`goldpan ${command} --help\` for its options.`;
  return new GoldpanError("E_CONFIG", `${message}\n${hint}`);
}

/** A number if the text is one; else the text itself, for the schema to reject by field. */
function toNumber(text: string): number | string {
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

/** Node's parseArgs messages, made short. */
function explainParseError(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${option ?? message}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return option !== undefined && message.includes("does not take an argument")
        ? `option ${option} takes no value`
        : option !== undefined && message.includes("ambiguous")
          ? `option ${option} needs a value; write ${option}=<value> for one starting with '-'`
          : `option ${option ?? ""} needs a value`.replace("  ", " ");
    default:
      return message;
  }
}

/** `--seed -1` → `--seed=-1`: node's parseArgs refuses a value that starts with '-'. */
function joinNegativeNumbers(args: readonly string[], options: Record<string, { type: "string" | "boolean" }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg.startsWith("--") && options[arg.slice(2)]?.type === "string" && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
    if (arg === "--") {
      out.push(...args.slice(i + 1));
      break;
    }
  }
  return out;
}

function parseCommand(spec: CommandSpec, args: readonly string[]): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const f of spec.flags) options[f.name] = { type: f.kind === "boolean" && f.booleanValue !== true ? "boolean" : "string" };
  try {
    const { values, positionals } = nodeParseArgs({ args: joinNegativeNumbers(args, options), options, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    throw usageError(explainParseError(e), spec.name);
  }
}

/** A flag's text as the config value: numbers as numbers, `a,b` as a list, `true`/`false` as
 * booleans; anything else stays text, for the schema to reject by field. */
function flagValue(f: FlagSpec, v: string | boolean): unknown {
  if (typeof v !== "string") return v;
  switch (f.kind) {
    case "int":
    case "number":
      return toNumber(v);
    case "list":
      return v.split(",").map((item) => item.trim()).filter((item) => item !== "");
    case "boolean":
      return v === "true" ? true : v === "false" ? false : v;
    default:
      return v;
  }
}

function configFrom(spec: CommandSpec, values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const f of spec.flags) {
    const v = values[f.name];
    if (f.key === undefined || v === undefined) continue;
    // A nested field (`pul.attach`) goes into its object.
    const path = f.key.split(".");
    let target = config;
    for (const part of path.slice(0, -1)) target = (target[part] ??= {}) as Record<string, unknown>;
    const key = path.at(-1)!;
    const value = flagValue(f, v);
    // A list given by two flags (`--diagnostics` and its alias `--track`) gets both.
    const given = target[key];
    target[key] = Array.isArray(given) && Array.isArray(value) ? [...new Set([...given, ...value])] : value;
  }
  return config;
}

function positional(spec: CommandSpec, positionals: readonly string[]): string {
  const [first, ...rest] = positionals;
  const name = spec.positional?.name ?? "argument";
  if (first === undefined) throw usageError(`missing <${name}>`, spec.name);
  if (rest.length > 0) throw usageError(`unexpected argument ${JSON.stringify(rest[0])}`, spec.name);
  return first;
}

export function parseArgs(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h") return { name: "help" };
  if (first === "help") {
    const [topic, sub] = rest;
    if (topic === undefined) return { name: "help" };
    if (!isCommandName(topic)) throw usageError(`unknown command ${JSON.stringify(topic)}`);
    if (topic === "sfda" && sub !== undefined) {
      if (!isSfdaCommandName(sub)) throw usageError(`unknown sfda command ${JSON.stringify(sub)}; sfda commands: ${Object.keys(SFDA_COMMANDS).join(", ")}`, "sfda");
      return { name: "help", topic: `sfda ${sub}` };
    }
    return { name: "help", topic };
  }
  if (first === "--version" || first === "-v" || first === "version") return { name: "version" };
  if (!isCommandName(first)) {
    const what = first.startsWith("-") ? `unknown option ${first}` : `unknown command ${JSON.stringify(first)}`;
    throw usageError(`${what}; commands: ${Object.keys(COMMANDS).join(", ")}`);
  }
  if (first === "sfda") return parseSfda(rest);
  const spec = COMMANDS[first];
  if (helpAsked(rest)) return { name: "help", topic: first };

  const { values, positionals } = parseCommand(spec, rest);
  const json = values.json === true;
  switch (spec.name) {
    case "train": {
      if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, "train");
      const config = configFrom(spec, values);
      const checkpoint = values.resume;
      if (typeof checkpoint !== "string") return { name: "train", config, json };
      const extra = Object.keys(config).filter((k) => !resumeKeys.has(k));
      if (extra.length > 0) {
        const flags = spec.flags.filter((f) => f.key !== undefined && extra.includes(f.key) && values[f.name] !== undefined).map((f) => `--${f.name}`);
        throw usageError(`${flags.join(", ")} cannot be combined with --resume: the run's saved config is used`, "train");
      }
      return { name: "resume", config: { ...config, checkpoint }, json };
    }
    case "eval":
      return { name: "eval", config: { ...configFrom(spec, values), checkpoint: positional(spec, positionals) }, json };
    case "hessian": {
      const config = { ...configFrom(spec, values), checkpoint: positional(spec, positionals) };
      return typeof values.out === "string" ? { name: "hessian", config, out: values.out, json } : { name: "hessian", config, json };
    }
    case "ntk": {
      const config = { ...configFrom(spec, values), checkpoint: positional(spec, positionals) };
      return { name: "ntk", config: values["no-eigen"] === true ? { ...config, eigen: false } : config, json };
    }
    case "info":
      return { name: "info", checkpoint: positional(spec, positionals), json };
    case "models":
      if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, "models");
      return { name: "models", json };
    default:
      throw usageError(`unknown command ${JSON.stringify(first)}`);
  }
}

function helpAsked(args: readonly string[]): boolean {
  const dashDash = args.indexOf("--");
  const beforeDashDash = dashDash === -1 ? args : args.slice(0, dashDash);
  return beforeDashDash.includes("--help") || beforeDashDash.includes("-h");
}

/** `goldpan sfda <source|adapt|table> …`. */
function parseSfda(args: readonly string[]): Command {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") return { name: "help", topic: "sfda" };
  if (!isSfdaCommandName(sub)) {
    const what = sub.startsWith("-") ? `unknown option ${sub}` : `unknown sfda command ${JSON.stringify(sub)}`;
    throw usageError(`${what}; sfda commands: ${Object.keys(SFDA_COMMANDS).join(", ")}`, "sfda");
  }
  const spec = SFDA_COMMANDS[sub];
  if (helpAsked(rest)) return { name: "help", topic: spec.name };
  const { values, positionals } = parseCommand(spec, rest);
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, spec.name);
  const json = values.json === true;
  const config = configFrom(spec, values);
  switch (sub) {
    case "source":
      return { name: "sfda-source", config, json };
    case "adapt":
      return { name: "sfda-adapt", config, json };
    case "table":
      return { name: "sfda-table", options: config, json };
  }
}
