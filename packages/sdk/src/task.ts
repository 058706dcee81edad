/**
 * Long addon calls: progress events, cancellation by `AbortSignal`, and errors as
 * {@link GoldpanError}s, the same for training, SFDA, Hessian and NTK analyses.
 */
import { loadBinding, type Binding } from "./binding.js";
import { GoldpanError, normalizeError } from "./errors.js";

/** What a progress event is: "step" every `progressEvery` steps, "epoch" at each epoch's end
 * (with test metrics), "diagnostics" every `diagnosticsEvery` steps of a training run with
 * `diagnostics` (sent after that step's update; `step` is the measured step), "analysis" after
 * each Hessian–vector product of a Hessian analysis (`step` counts them) or at each phase of an
 * NTK analysis. */
export type ProgressKind = "step" | "epoch" | "diagnostics" | "analysis";

/** The paper's Eq. 3 at one step (`crates/core/src/hessian/eq3.rs`), over the fixed probe set:
 * `g` its loss gradient, `H` its Hessian, `α` the step size. */
export type Eq3Diagnostics = {
  /** Probe-set loss L(θ). */
  loss: number;
  /** ‖g‖. */
  gradNorm: number;
  /** ‖Hg‖. */
  hgNorm: number;
  /** gᵀHg / ‖g‖²: curvature along the gradient. */
  curvature: number;
  alpha: number;
  /** Eq. 4: ‖g‖² − α·gᵀHg/2. */
  descent: number;
  /** L(θ − αg) − L(θ), measured (compare −α·descent). */
  lossChange: number;
  /** cos(∇L(θ), ∇L(θ − αg)). */
  cosAlongGradient: number;
  /** cos(∇L(θ), ∇L(θ + δ)) for a random δ with ‖δ‖ = α‖g‖. */
  cosRandom: number;
  /** cos(g̃, g) for the step's minibatch gradient g̃. */
  minibatchCos: number;
  /** ‖g̃ − g‖. */
  minibatchNoise: number;
};

/** The empirical NTK of the probe set's first images at one step (full kernel, structured
 * method, evaluation mode; `crates/core/src/train/diagnostics.rs`). */
export type NtkDiagnostics = {
  /** Images the kernel is over (the probe set's first 128 at most). */
  samples: number;
  /** The five largest eigenvalues, descending. */
  top: number[];
  trace: number;
  minEigenvalue: number;
  /** Eq. 7: fraction of `C×C` blocks Θ(xᵢ, xⱼ) with a positive-definite symmetric part; over the
   * diagonal blocks Θ(xᵢ, xᵢ) only. */
  pdFraction: number;
  pdFractionDiagonal: number;
};

/** Predicted classes over the probe set (a diagnostics event) or the training set (an epoch
 * event): Fig. 1's swing. */
export type SwingDiagnostics = {
  samples: number;
  /** Predictions per class. */
  counts: number[];
  /** The largest class's share of the predictions. */
  dominantShare: number;
};

/** Fig. 2's function speed across one step's update, over the probe set. */
export type SpeedDiagnostics = {
  /** Mean KL(softmax f_{t+1} ‖ softmax f_t). */
  kl: number;
  /** Error rate of f_t on the training labels. */
  error: number;
  samples: number;
};

/** What an analysis event is about: a Hessian analysis' product ("eigen", "trace", "density"), or
 * an NTK analysis' phase ("kernel" and "eigen" as they start, "top-k" when it ends). */
export type AnalysisPhase = "eigen" | "trace" | "density" | "kernel" | "top-k";

/** A "diagnostics" event's measurements (the kinds the run tracks), an "epoch" event's `swing`
 * over the training set, or an "analysis" event's phase. */
export type ProgressDiagnostics = {
  eq3?: Eq3Diagnostics;
  ntk?: NtkDiagnostics;
  swing?: SwingDiagnostics;
  speed?: SpeedDiagnostics;
  phase?: AnalysisPhase;
};

/** A progress event. Metrics an event does not have arrive as NaN (`loss` of "diagnostics" and
 * "analysis" events, an adaptation's training accuracy). */
export type Progress = Omit<Binding.BindingProgress, "kind" | "diagnostics"> & {
  kind: ProgressKind;
  diagnostics?: ProgressDiagnostics;
};

export interface RunOptions {
  /** Called on the main thread for each progress event. If it throws, the run is cancelled and
   * rejects with that error. */
  onProgress?: (progress: Progress) => void;
  /** Aborting cancels the run within one step (one Hessian–vector product for an analysis); it
   * then rejects with `E_CANCELLED`, having written `last.safetensors` when a training run has an
   * `outDir`. */
  signal?: AbortSignal;
}

/** Yields to the event loop until `done()`, for at most `limitMs` (events already queued
 * natively arrive within a turn or two; the limit only guards against a lost event). */
async function settleEvents(done: () => boolean, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!done() && Date.now() < deadline) {
    await new Promise<void>((r) => setImmediate(r));
  }
}

/**
 * Runs one long addon call: `call` gets the addon, a progress callback and a fresh `CancelToken`
 * tied to `options.signal`. A throwing `onProgress` cancels the run and becomes its rejection;
 * every error is normalized to a {@link GoldpanError}; the promise settles only after every
 * progress event the core sent (`progressEvents` on the result or the error) has been delivered,
 * since events and the result travel on different native queues. Packages above the SDK
 * (`@goldpan/sfda`) run their tasks through this instead of loading the addon themselves.
 */
export async function runTask<T>(
  options: RunOptions,
  call: (b: typeof Binding, onProgress: (p: Binding.BindingProgress) => void, token: Binding.CancelToken) => Promise<T>,
): Promise<T> {
  const { signal, onProgress } = options;
  if (signal?.aborted) throw new GoldpanError("E_CANCELLED", "cancelled before it started");
  const b = loadBinding();
  const token = new b.CancelToken();
  const onAbort = (): void => token.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });

  let received = 0;
  let callbackFailed = false;
  let callbackError: unknown;
  const progress = (p: Binding.BindingProgress): void => {
    received++;
    if (callbackFailed || !onProgress) return;
    try {
      onProgress(p as Progress);
    } catch (e) {
      callbackFailed = true;
      callbackError = e;
      token.cancel();
    }
  };

  try {
    const result = await call(b, progress, token);
    const sent = (result as { progressEvents?: number }).progressEvents ?? 0;
    await settleEvents(() => received >= sent);
    if (callbackFailed) throw callbackError;
    return result;
  } catch (e) {
    const sent = (e as { progressEvents?: unknown } | null)?.progressEvents;
    if (typeof sent === "number") await settleEvents(() => received >= sent);
    throw normalizeError(callbackFailed ? callbackError : e);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
