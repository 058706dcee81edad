/**
 * The one table from error code to process exit code. Typed as a full `Record<ErrorCode, …>`, so a
 * code added to the SDK does not compile until it has a row here.
 */
import { normalizeError, type ErrorCode } from "@goldpan/sdk";

export const EXIT_OK = 0;

interface ExitRow {
  exit: number;
  meaning: string;
}

export const EXIT_CODES: Readonly<Record<ErrorCode, ExitRow>> = {
  E_CONFIG: { exit: 2, meaning: "bad command line or config (unknown flag, invalid value)" },
  E_DATA_MAGIC: { exit: 3, meaning: "data problem: missing, truncated or malformed dataset files" },
  E_DATA_DIMS: { exit: 3, meaning: "data problem" },
  E_DATA_TRUNCATED: { exit: 3, meaning: "data problem" },
  E_DATA_FORMAT: { exit: 3, meaning: "data problem" },
  E_DATA_COUNT_MISMATCH: { exit: 3, meaning: "data problem" },
  E_DATA_LABEL: { exit: 3, meaning: "data problem" },
  E_DATA_NOT_FOUND: { exit: 3, meaning: "data problem" },
  E_DEVICE: { exit: 4, meaning: "device unavailable (e.g. --device cuda on a build without CUDA)" },
  E_NAN_LOSS: { exit: 5, meaning: "loss became NaN/inf; the last good checkpoint is kept" },
  E_CHECKPOINT: { exit: 6, meaning: "unreadable or incompatible checkpoint" },
  E_IO: { exit: 7, meaning: "file system error (permissions, disk full, …)" },
  E_MEMORY: { exit: 8, meaning: "over the memory budget (--memory-budget); the message says what fits" },
  E_CANCELLED: { exit: 130, meaning: "interrupted (Ctrl-C); train leaves a checkpoint to resume from" },
  E_SHAPE: { exit: 1, meaning: "internal error (a bug: please report it)" },
  E_INTERNAL: { exit: 1, meaning: "internal error (a bug: please report it)" },
};

/** The exit code for anything thrown. */
export function exitCodeFor(error: unknown): number {
  return EXIT_CODES[normalizeError(error).code].exit;
}

/** The table as help text: one line per exit code, with the error codes it covers. */
export function exitCodesHelp(): string {
  const byExit = new Map<number, { codes: string[]; meaning: string }>();
  for (const [code, row] of Object.entries(EXIT_CODES) as [ErrorCode, ExitRow][]) {
    const entry = byExit.get(row.exit);
    if (entry === undefined) byExit.set(row.exit, { codes: [code], meaning: row.meaning });
    else entry.codes.push(code);
  }
  const rows: [number, string, string][] = [[EXIT_OK, "success", ""]];
  for (const [exit, { codes, meaning }] of byExit) {
    const shown = codes.length > 2 && codes.every((c) => c.startsWith("E_DATA_")) ? "E_DATA_*" : codes.join(", ");
    rows.push([exit, meaning, shown]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  return rows.map(([exit, meaning, codes]) => `  ${String(exit).padStart(3)}  ${meaning}${codes === "" ? "" : ` [${codes}]`}`).join("\n");
}
