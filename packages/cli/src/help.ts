/** Help texts, built from the command table (whose flags come from the SDK's zod schemas). */
import { COMMANDS, type CommandName, type CommandSpec } from "./args.js";
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
      return `--${f.name}`;
    case "enum":
      return `--${f.name} ${(f.choices ?? []).join("|")}`;
    case "int":
      return `--${f.name} <n>`;
    case "number":
      return `--${f.name} <x>`;
    case "string":
      return `--${f.name} <${f.name === "data" || f.name === "out" ? "dir" : f.name === "resume" ? "checkpoint" : f.name === "model" ? "name" : "value"}>`;
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
    `goldpan ${spec.name}: ${spec.summary}`,
    `Usage:\n${spec.usage.map((u) => `  ${u}`).join("\n")}`,
  ];
  if (spec.positional !== undefined) parts.push(`Arguments:\n  <${spec.positional.name}>  ${spec.positional.description}`);
  parts.push(`Options:\n${flagsBlock(spec.flags)}`);
  for (const note of spec.notes ?? []) parts.push(wrap(note, 0, 0));
  parts.push(`Exit codes:\n${exitCodesHelp()}`);
  return `${parts.join("\n\n")}\n`;
}

export function mainHelp(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const col = Math.max(...names.map((n) => n.length)) + 4;
  return `goldpan: train and study small conv nets (LeNet-5 on MNIST, …) on a Rust core.

Usage:
  goldpan <command> [options]
  goldpan <command> --help      options of one command

Commands:
${names.map((n) => `  ${n.padEnd(col)}${COMMANDS[n].summary}`).join("\n")}

Quick start:
  goldpan train --epochs 2 --out runs/demo      train on the bundled MNIST subset
  goldpan eval runs/demo/last.safetensors       test accuracy of the result
  goldpan train --resume runs/demo/last.safetensors --epochs 4

Data: --data DIR, else $GOLDPAN_DATA, else the data/ folder bundled with goldpan; a data directory
holds one folder per dataset (mnist/train-images-idx3-ubyte.gz, …).

Exit codes:
${exitCodesHelp()}
`;
}

export function helpText(topic?: CommandName): string {
  return topic === undefined ? mainHelp() : commandHelp(COMMANDS[topic]);
}
