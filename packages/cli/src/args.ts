/**
 * argv → a command object. Pure: no I/O, no environment, no addon; validation of values is the
 * SDK's (zod) and happens when the command runs. Throws `GoldpanError` `E_CONFIG` on bad usage.
 */
import { parseArgs as nodeParseArgs } from "node:util";
import {
  EvalConfigSchema,
  GoldpanError,
  ResumeConfigSchema,
  TrainConfigSchema,
  describeFields,
} from "@goldpan/sdk";
import { JSON_FLAG, flagsFromFields, type FlagSpec } from "./flags.js";

export type CommandName = "train" | "eval" | "models" | "info";

export type Command =
  | { name: "help"; topic?: CommandName }
  | { name: "version" }
  /** Raw (unvalidated) config input built from the flags. */
  | { name: "train"; config: Record<string, unknown>; json: boolean }
  | { name: "resume"; config: Record<string, unknown>; json: boolean }
  | { name: "eval"; config: Record<string, unknown>; json: boolean }
  | { name: "models"; json: boolean }
  | { name: "info"; checkpoint: string; json: boolean };

export interface CommandSpec {
  name: CommandName;
  summary: string;
  usage: string[];
  /** The positional argument, if the command takes one. */
  positional?: { name: string; description: string };
  flags: FlagSpec[];
  /** Extra help paragraphs. */
  notes?: string[];
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
});

/** Flags that may accompany --resume: the resume config's fields. */
const resumeKeys: ReadonlySet<string> = new Set(
  describeFields(ResumeConfigSchema)
    .map((f) => f.key)
    .filter((k) => k !== "checkpoint"),
);

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  train: {
    name: "train",
    summary: "Train a model, writing a run directory with config, metrics and checkpoints.",
    usage: ["goldpan train [options]", "goldpan train --resume <checkpoint> [--epochs N] [--data DIR] [--out DIR] [--device D]"],
    flags: [...trainFlags, RESUME_FLAG, JSON_FLAG],
    notes: [
      "Progress goes to stderr: a progress bar on a terminal, one line per event otherwise. " +
        "metrics.jsonl gets one JSON object per progress event as it happens.",
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
};

function isCommandName(s: string): s is CommandName {
  return Object.hasOwn(COMMANDS, s);
}

function usageError(message: string, command?: CommandName): GoldpanError {
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
  for (const f of spec.flags) options[f.name] = { type: f.kind === "boolean" ? "boolean" : "string" };
  try {
    const { values, positionals } = nodeParseArgs({ args: joinNegativeNumbers(args, options), options, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    throw usageError(explainParseError(e), spec.name);
  }
}

function configFrom(spec: CommandSpec, values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const f of spec.flags) {
    const v = values[f.name];
    if (f.key === undefined || v === undefined) continue;
    config[f.key] = typeof v === "string" && (f.kind === "int" || f.kind === "number") ? toNumber(v) : v;
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
    const [topic] = rest;
    if (topic === undefined) return { name: "help" };
    if (!isCommandName(topic)) throw usageError(`unknown command ${JSON.stringify(topic)}`);
    return { name: "help", topic };
  }
  if (first === "--version" || first === "-v" || first === "version") return { name: "version" };
  if (!isCommandName(first)) {
    const what = first.startsWith("-") ? `unknown option ${first}` : `unknown command ${JSON.stringify(first)}`;
    throw usageError(`${what}; commands: ${Object.keys(COMMANDS).join(", ")}`);
  }
  const spec = COMMANDS[first];
  const dashDash = rest.indexOf("--");
  const beforeDashDash = dashDash === -1 ? rest : rest.slice(0, dashDash);
  if (beforeDashDash.includes("--help") || beforeDashDash.includes("-h")) return { name: "help", topic: first };

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
        const flags = spec.flags.filter((f) => f.key !== undefined && extra.includes(f.key)).map((f) => `--${f.name}`);
        throw usageError(`${flags.join(", ")} cannot be combined with --resume: the run's saved config is used`, "train");
      }
      return { name: "resume", config: { ...config, checkpoint }, json };
    }
    case "eval":
      return { name: "eval", config: { ...configFrom(spec, values), checkpoint: positional(spec, positionals) }, json };
    case "info":
      return { name: "info", checkpoint: positional(spec, positionals), json };
    case "models":
      if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, "models");
      return { name: "models", json };
  }
}
