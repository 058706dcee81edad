/**
 * `goldpan`: argv → command → SDK → exit code. Every failure is reported once, on stderr (and as
 * `{"error": …}` on stdout with --json), and mapped to an exit code by the one table.
 */
import { createRequire } from "node:module";
import { normalizeError, version as coreVersion, type GoldpanError } from "@goldpan/sdk";
import { parseArgs, type Command } from "./args.js";
import { evalCommand } from "./commands/eval.js";
import { hessianCommand } from "./commands/hessian.js";
import { infoCommand } from "./commands/info.js";
import { modelsCommand } from "./commands/models.js";
import { ntkCommand } from "./commands/ntk.js";
import { resumeCommand } from "./commands/resume.js";
import { sfdaAdaptCommand } from "./commands/sfda/adapt.js";
import { sfdaSourceCommand } from "./commands/sfda/source.js";
import { sfdaTableCommand } from "./commands/sfda/table.js";
import { trainCommand } from "./commands/train.js";
import { jsonLine, type Context } from "./context.js";
import { EXIT_CODES, EXIT_OK } from "./exit-codes.js";
import { flagForPath } from "./flags.js";
import { helpText } from "./help.js";

export { parseArgs, type Command } from "./args.js";
export { EXIT_CODES, exitCodeFor } from "./exit-codes.js";

function cliVersion(): string {
  return (createRequire(import.meta.url)("../package.json") as { version: string }).version;
}

function versionText(): string {
  let core: string;
  try {
    core = coreVersion();
  } catch (e) {
    core = `unavailable: ${normalizeError(e).message.split("\n")[0]}`;
  }
  return `goldpan ${cliVersion()} (core ${core}, node ${process.version})\n`;
}

async function run(cmd: Command, ctx: Context): Promise<number> {
  switch (cmd.name) {
    case "help":
      ctx.stdout.write(helpText(cmd.topic));
      return EXIT_OK;
    case "version":
      ctx.stdout.write(versionText());
      return EXIT_OK;
    case "train":
      return trainCommand(cmd, ctx);
    case "resume":
      return resumeCommand(cmd, ctx);
    case "eval":
      return evalCommand(cmd, ctx);
    case "hessian":
      return hessianCommand(cmd, ctx);
    case "ntk":
      return ntkCommand(cmd, ctx);
    case "models":
      return modelsCommand(cmd, ctx);
    case "info":
      return infoCommand(cmd, ctx);
    case "sfda-source":
      return sfdaSourceCommand(cmd, ctx);
    case "sfda-adapt":
      return sfdaAdaptCommand(cmd, ctx);
    case "sfda-table":
      return sfdaTableCommand(cmd, ctx);
  }
}

/** The human-readable report of an error: config issues by flag, a resume hint after a cancel. */
export function describeError(e: GoldpanError): string {
  let text: string;
  if (e.code === "E_CONFIG" && e.issues !== undefined && e.issues.length > 0) {
    text = `invalid options:\n${e.issues.map((i) => `  ${flagForPath(i.path)}: ${i.message}`).join("\n")}`;
  } else text = e.message;
  let out = `goldpan: ${text}\n`;
  if ((e.code === "E_CANCELLED" || e.code === "E_NAN_LOSS") && e.checkpoint !== undefined) {
    out += `resume with: goldpan train --resume ${e.checkpoint}\n`;
  }
  out += `(${e.code}, exit code ${EXIT_CODES[e.code].exit})\n`;
  return out;
}

export async function main(argv: readonly string[], ctx: Context = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let json = argv.includes("--json");
  try {
    const cmd = parseArgs(argv);
    json = "json" in cmd && cmd.json;
    return await run(cmd, ctx);
  } catch (thrown) {
    const e = normalizeError(thrown);
    ctx.stderr.write(describeError(e));
    if (json) {
      const error: Record<string, unknown> = { code: e.code, message: e.message };
      if (e.issues !== undefined) error.issues = e.issues;
      if (e.checkpoint !== undefined) error.checkpoint = e.checkpoint;
      ctx.stdout.write(jsonLine({ error }));
    }
    return EXIT_CODES[e.code].exit;
  }
}
