/**
 * Ctrl-C handling for long commands: the first SIGINT (or a SIGTERM) aborts the signal, so the core
 * stops after the current step and writes a checkpoint; a second SIGINT exits at once with 130.
 */
import type { Writable } from "node:stream";

export interface Interrupt {
  signal: AbortSignal;
  dispose(): void;
}

/** What the first Ctrl-C of `goldpan train` promises. */
export const CHECKPOINT_ON_INTERRUPT = "stopping after the current step and writing a checkpoint";

/** `what` says what the first Ctrl-C does, for the message (e.g. "stopping after the current step"). */
export function abortOnInterrupt(stderr: Writable, what: string = CHECKPOINT_ON_INTERRUPT): Interrupt {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      if (name === "SIGINT") process.exit(130);
      return;
    }
    stderr.write(`\n${name === "SIGINT" ? "Interrupted" : "Terminated"}: ${what} (Ctrl-C again to quit now)…\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
