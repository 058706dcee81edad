/**
 * What the core returns, as its serde output (`crates/core/src/sfda/{source,adapt}.rs`, camelCase).
 * Paths are absolute; `checkpoint` is null when the config had no `outDir`.
 */
import type { Method } from "./config.js";

/** SHOT source training's outcome: the model of the best held-out epoch is kept. */
export interface SourceResult {
  /** `<outDir>/source.safetensors`. */
  checkpoint: string | null;
  /** 1-based epoch of the kept model. */
  bestEpoch: number;
  bestValAccuracy: number;
  /** Held-out accuracy after each epoch, in [0, 1]. */
  valAccuracy: number[];
  /** The kept model on the source test split. */
  sourceTestAccuracy: number;
  trainSize: number;
  valSize: number;
  steps: number;
  wallSec: number;
  /** SHA-256 of the kept weights, hex. */
  weightsHash: string;
  /** How many progress events the core sent (the SDK waits for them before it resolves). */
  progressEvents: number;
}

/** A model on the target test split (the core's `EvalResult`). */
export interface TargetEval {
  count: number;
  loss: number;
  /** In [0, 1]. */
  accuracy: number;
  wallSec: number;
}

/** An adaptation's outcome. Target labels were used for nothing but these test evaluations. */
export interface AdaptResult {
  method: Method;
  /** The source model on the target test split. */
  before: TargetEval;
  /** The adapted model on the target test split. */
  after: TargetEval;
  /** Target test accuracy after each epoch (reported, never used for any choice). */
  epochAccuracy: number[];
  /** The label-free criterion on the target training split: mutual information between inputs
   * and predictions, H(mean p) − mean H(p), in nats; before and after adaptation. */
  mutualInformationBefore: number;
  mutualInformationAfter: number;
  /** 0 for none and adabn. */
  epochs: number;
  steps: number;
  wallSec: number;
  /** `<outDir>/adapted.safetensors`. */
  checkpoint: string | null;
  weightsHash: string;
  progressEvents: number;
}
