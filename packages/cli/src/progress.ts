/**
 * Progress on stderr: a bar per epoch on a terminal, else one plain line per event (logs, CI,
 * pipes). Both get the same numbers.
 */
import type { Writable } from "node:stream";
import cliProgress from "cli-progress";
import type { Progress } from "@goldpan/sdk";

export interface ProgressReporter {
  update(p: Progress): void;
  /** Stops the bar (if any) so later output starts on a clean line. */
  stop(): void;
}

export interface ProgressLabels {
  /** What an epoch event's test metrics are measured on: "test" (training), "held-out" (SFDA
   * source training), "target test" (adaptation). */
  evaluation?: string;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Metrics a run does not compute arrive as NaN (an adaptation has no training accuracy). */
const known = (x: number): boolean => Number.isFinite(x);

export function formatStep(p: Progress): string {
  return (
    `epoch ${p.epoch}/${p.epochs} step ${p.stepInEpoch}/${p.stepsPerEpoch} ` +
    `loss ${p.loss.toFixed(4)}${known(p.accuracy) ? ` acc ${pct(p.accuracy)}` : ""} ${Math.round(p.imagesPerSec)} img/s`
  );
}

export function formatEpoch(p: Progress, labels: ProgressLabels = {}): string {
  const parts: string[] = [];
  if (known(p.loss)) parts.push(`train loss ${p.loss.toFixed(4)}${known(p.accuracy) ? ` acc ${pct(p.accuracy)}` : ""}`);
  if (p.testLoss !== undefined && p.testAccuracy !== undefined) {
    parts.push(`${labels.evaluation ?? "test"} loss ${p.testLoss.toFixed(4)} acc ${pct(p.testAccuracy)}`);
  }
  parts.push(`${p.elapsedSec.toFixed(1)}s`);
  if (p.checkpoint !== undefined) parts.push(p.checkpoint);
  return `epoch ${p.epoch}/${p.epochs} done: ${parts.join(" | ")}`;
}

/** One line per event. */
export function plainReporter(stream: Writable, labels: ProgressLabels = {}): ProgressReporter {
  return {
    update(p) {
      stream.write(`${p.kind === "epoch" ? formatEpoch(p, labels) : formatStep(p)}\n`);
    },
    stop() {},
  };
}

/** A progress bar per epoch, redrawn in place; epoch summaries stay above it. */
export function barReporter(stream: NodeJS.WriteStream, labels: ProgressLabels = {}): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  let barEpoch = 0;
  const payload = (p: Progress) => ({
    epoch: `${p.epoch}/${p.epochs}`,
    loss: known(p.loss) ? p.loss.toFixed(4) : "–",
    acc: known(p.accuracy) ? pct(p.accuracy) : "–",
    ips: Math.round(p.imagesPerSec),
  });
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  return {
    update(p) {
      if (p.kind === "epoch") {
        bar?.update(p.stepsPerEpoch, payload(p));
        stop();
        stream.write(`${formatEpoch(p, labels)}\n`);
        return;
      }
      if (bar === undefined || barEpoch !== p.epoch) {
        stop();
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: "epoch {epoch} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {ips} img/s | eta {eta_formatted}",
            hideCursor: true,
            etaBuffer: 50,
            fps: 10,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.stepsPerEpoch, p.stepInEpoch, payload(p));
        barEpoch = p.epoch;
      } else bar.update(p.stepInEpoch, payload(p));
    },
    stop,
  };
}

export function progressReporter(stream: NodeJS.WriteStream | Writable, labels: ProgressLabels = {}): ProgressReporter {
  return "isTTY" in stream && stream.isTTY === true ? barReporter(stream as NodeJS.WriteStream, labels) : plainReporter(stream, labels);
}
