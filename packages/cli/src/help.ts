/** Help texts, built from the command table (whose flags come from the SDK's zod schemas). */
import { COMMANDS, specFor, type CommandSpec, type HelpTopic } from "./args.js";
import { exitCodesHelp } from "./exit-codes.js";
import type { FlagSpec } from "./flags.js";

const WIDTH = 100;
/** Joins words that must stay on one line; turned back into a space after wrapping. */
const NBSP = "\u0000";

function wrap(text: string, indent: number, first: number): string {
  const words = text.split(/[ \n]+/).filter((w) => w !== "");
  const lines: string[] = [];
  let line = "";
  let room = WIDTH - first;
  for (const word of words) {
    if (line !== "" && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
      room = WIDTH - indent;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`).replaceAll(NBSP, " ");
}

function flagSignature(f: FlagSpec): string {
  switch (f.kind) {
    case "boolean":
      return f.booleanValue === true ? `--${f.name} true|false` : `--${f.name}`;
    case "enum":
      return `--${f.name} ${(f.choices ?? []).join("|")}`;
    case "list":
      return `--${f.name} <a,b,…>`;
    case "int":
      return `--${f.name} <n>`;
    case "number":
      return `--${f.name} <x>`;
    case "string":
      if (f.valueName !== undefined) return `--${f.name} <${f.valueName}>`;
      return `--${f.name} <${f.name === "data" || f.name === "out" ? "dir" : f.name === "resume" || f.name === "from" ? "checkpoint" : f.name === "model" ? "name" : "value"}>`;
  }
}

function flagsBlock(flags: readonly FlagSpec[]): string {
  const rows = [...flags.map((f) => [flagSignature(f), f.defaultText === undefined ? f.description : `${f.description} (default:${NBSP}${f.defaultText})`] as const), ["-h, --help", "Show this help."] as const];
  const col = Math.min(30, Math.max(...rows.map(([sig]) => sig.length)) + 4);
  return rows
    .map(([sig, text]) => {
      const pad = sig.length + 2 >= col ? `\n${" ".repeat(col + 2)}` : " ".repeat(col - sig.length);
      return `  ${sig}${pad}${wrap(text, col + 2, col + 2)}`;
    })
    .join("\n");
}

export function commandHelp(spec: CommandSpec): string {
  const parts = [
    wrap(`goldpan ${spec.name}: ${spec.summary}`, 2, 0),
    `Usage:\n${spec.usage.map((u) => `  ${u}`).join("\n")}`,
  ];
  if (spec.positional !== undefined) parts.push(`Arguments:\n  <${spec.positional.name}>  ${spec.positional.description}`);
  if (spec.subcommands !== undefined) parts.push(`Commands:\n${commandList(spec.subcommands)}`);
  parts.push(`Options:\n${flagsBlock(spec.flags)}`);
  for (const note of spec.notes ?? []) parts.push(wrap(note, 0, 0));
  parts.push(`Exit codes:\n${exitCodesHelp()}`);
  return `${parts.join("\n\n")}\n`;
}

/** `  name    summary` rows, summaries wrapped under their column. */
function commandList(specs: Readonly<Record<string, CommandSpec>>): string {
  const names = Object.keys(specs);
  const col = Math.max(...names.map((n) => n.length)) + 4;
  return names.map((n) => `  ${n.padEnd(col)}${wrap(specs[n]!.summary, col + 2, col + 2)}`).join("\n");
}

export function mainHelp(): string {
  return `goldpan: train and study small conv nets (LeNet-5 on MNIST, …) on a Rust core.

Usage:
  goldpan <command> [options]
  goldpan <command> --help      options of one command

Commands:
${commandList(COMMANDS)}

Quick start:
  goldpan train --epochs 2 --out runs/demo      train on the bundled MNIST subset
  goldpan eval runs/demo/last.safetensors       test accuracy of the result
  goldpan train --resume runs/demo/last.safetensors --epochs 4
  goldpan hessian runs/demo/last.safetensors --trace
  goldpan ntk runs/demo/last.safetensors --n 100 --kernel full --top-k 10
  goldpan sfda source --source mnist --epochs 3 --out runs/sfda
  goldpan sfda adapt --method pul --from runs/sfda/source.safetensors --target usps --out runs/sfda

Data: --data DIR, else $GOLDPAN_DATA, else the data/ folder bundled with goldpan; a data directory
holds one folder per dataset (mnist/train-images-idx3-ubyte.gz, usps/usps.h5, …).

Exit codes:
${exitCodesHelp()}
`;
}

export function helpText(topic?: HelpTopic): string {
  return topic === undefined ? mainHelp() : commandHelp(specFor(topic));
}
