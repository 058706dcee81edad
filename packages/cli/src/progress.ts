/**
 * Progress on stderr: a bar per epoch on a terminal, else one plain line per event (logs, CI,
 * pipes). Both get the same numbers; a training diagnostics event is a line of its own either way.
 * A Hessian or NTK analysis has its own reporter: its phase (and products done).
 */
import type { Writable } from "node:stream";
import cliProgress from "cli-progress";
import type { Progress } from "@goldpan/sdk";
import { abortOnInterrupt } from "./interrupt.js";

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

/** Back to the line's start and erase it (a terminal's own line, redrawn in place). */
const CLEAR_LINE = "\r\x1b[K";
const LINE_UP = "\x1b[1A";

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
  if (p.diagnostics?.swing !== undefined) parts.push(`swing ${pct(p.diagnostics.swing.dominantShare)} on one class`);
  if (p.checkpoint !== undefined) parts.push(p.checkpoint);
  return `epoch ${p.epoch}/${p.epochs} done: ${parts.join(" | ")}`;
}

const num = (x: number | undefined | null): string => (x === undefined || x === null || !known(x) ? "–" : x.toFixed(4));
/** Four significant digits, for values of any scale (eigenvalues, KL). */
const sig = (x: number | undefined | null): string => (x === undefined || x === null || !known(x) ? "–" : String(Number(x.toPrecision(4))));

/** A diagnostics event in one line: the step it was taken at and the gist of each measurement, in
 * the order eq3, ntk, speed, swing. */
export function formatDiagnostics(p: Progress): string {
  const d = p.diagnostics ?? {};
  const parts: string[] = [];
  if (d.eq3 !== undefined) {
    const e = d.eq3;
    parts.push(
      `eq3: ‖g‖ ${num(e.gradNorm)} gᵀHg/‖g‖² ${num(e.curvature)} ` +
        `cos along g ${num(e.cosAlongGradient)} vs random ${num(e.cosRandom)} minibatch cos ${num(e.minibatchCos)}`,
    );
  }
  if (d.ntk !== undefined) parts.push(`ntk: λ1 ${sig(d.ntk.top[0])} trace ${sig(d.ntk.trace)} pd ${pct(d.ntk.pdFraction)}`);
  if (d.speed !== undefined) parts.push(`speed: KL ${known(d.speed.kl) ? d.speed.kl.toExponential(2) : "–"} error ${pct(d.speed.error)}`);
  if (d.swing !== undefined) parts.push(`swing: dominant ${pct(d.swing.dominantShare)}`);
  return parts.length === 0 ? `step ${p.step} diagnostics: ${JSON.stringify(d)}` : `step ${p.step} ${parts.join(" | ")}`;
}

/** A Hessian analysis event: products done so far and what for. */
export function formatAnalysis(p: Progress): string {
  return `hessian ${p.diagnostics?.phase ?? "analysis"}: ${p.step} Hessian–vector products, ${p.elapsedSec.toFixed(1)}s`;
}

/** An NTK analysis event: the phase that starts (kernel, eigen) or ends (top-k). */
export function formatNtkAnalysis(p: Progress): string {
  const at = `${p.elapsedSec.toFixed(1)}s`;
  switch (p.diagnostics?.phase) {
    case "kernel":
      return `ntk kernel: forming it, ${at}`;
    case "eigen":
      return `ntk eigen: eigendecomposition, ${at}`;
    case "top-k":
      return `ntk top-k: done, ${p.step} kernel–vector products, ${at}`;
    default:
      return `ntk ${p.diagnostics?.phase ?? "analysis"}: ${at}`;
  }
}

function formatLine(p: Progress, labels: ProgressLabels): string {
  switch (p.kind) {
    case "epoch":
      return formatEpoch(p, labels);
    case "diagnostics":
      return formatDiagnostics(p);
    case "analysis":
      return formatAnalysis(p);
    case "step":
      return formatStep(p);
  }
}

/** One line per event. */
export function plainReporter(stream: Writable, labels: ProgressLabels = {}): ProgressReporter {
  return {
    update(p) {
      stream.write(`${formatLine(p, labels)}\n`);
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
      if (p.kind !== "step") {
        // A line of its own where the bar was (stopped, it leaves its line behind); the next step
        // starts a new bar below.
        if (bar !== undefined) {
          stop();
          stream.write(`${LINE_UP}${CLEAR_LINE}`);
        }
        stream.write(`${formatLine(p, labels)}\n`);
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

/** How often a non-terminal stream gets a line during an analysis (and at each phase's start). */
export const ANALYSIS_LINE_EVERY = 10;

/** An analysis' progress: one line redrawn in place on a terminal; else a line when a phase starts
 * and every {@link ANALYSIS_LINE_EVERY} products. `format` writes the line (Hessian by default). */
export function analysisReporter(stream: NodeJS.WriteStream | Writable, format: (p: Progress) => string = formatAnalysis): ProgressReporter {
  const tty = "isTTY" in stream && stream.isTTY === true;
  let phase: string | undefined;
  let drawn = false;
  return {
    update(p) {
      const changed = p.diagnostics?.phase !== phase;
      phase = p.diagnostics?.phase;
      if (tty) {
        stream.write(`${CLEAR_LINE}${format(p)}`);
        drawn = true;
      } else if (changed || p.step % ANALYSIS_LINE_EVERY === 0) stream.write(`${format(p)}\n`);
    },
    stop() {
      if (drawn) stream.write("\n");
      drawn = false;
    },
  };
}

/** Runs one analysis call with its {@link analysisReporter} on `stderr` and Ctrl-C aborting it
 * (`onInterrupt` says what the first one does), tearing both down however the call ends. */
export async function runAnalysis<R>(
  stderr: NodeJS.WriteStream | Writable,
  onInterrupt: string,
  format: ((p: Progress) => string) | undefined,
  call: (opts: { signal: AbortSignal; onProgress: (p: Progress) => void }) => Promise<R>,
): Promise<R> {
  const reporter = analysisReporter(stderr, format);
  const interrupt = abortOnInterrupt(stderr, onInterrupt);
  try {
    return await call({ signal: interrupt.signal, onProgress: (p) => reporter.update(p) });
  } finally {
    reporter.stop();
    interrupt.dispose();
  }
}
