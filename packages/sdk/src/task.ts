/**
 * Long addon calls: progress events, cancellation by `AbortSignal`, and errors as
 * {@link GoldpanError}s, the same for training, SFDA and Hessian analyses.
 */
import { loadBinding, type Binding } from "./binding.js";
import { GoldpanError, normalizeError } from "./errors.js";

/** What a progress event is: "step" every `progressEvery` steps, "epoch" at each epoch's end
 * (with test metrics), "diagnostics" every `diagnosticsEvery` steps of a training run with
 * `diagnostics` (measured before that step's update), "analysis" after each Hessian–vector
 * product of a Hessian analysis (`step` counts them). */
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

/** Which analysis a Hessian–vector product served. */
export type AnalysisPhase = "eigen" | "trace" | "density";

/** A "diagnostics" event's measurements, or an "analysis" event's phase. */
export type ProgressDiagnostics = { eq3?: Eq3Diagnostics; phase?: AnalysisPhase };

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
