import type { Writable } from "node:stream";

/** Where a command writes; tests pass in-memory streams. */
export interface Context {
  stdout: Writable;
  /** Progress and messages; a progress bar is drawn when this is a TTY. */
  stderr: Writable | NodeJS.WriteStream;
}

/** A JSON line for `--json` output. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
