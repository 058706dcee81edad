/**
 * `@goldpan/sfda`: source-free domain adaptation on digits over goldpan's core.
 *
 * {@link trainSource} trains a source model with SHOT's recipe; {@link adapt} adapts it to an
 * unlabelled target domain with PUL (*Pan for Gold*), its KL-only control, SHOT-IM, SHOT, AdaBN or
 * nothing; {@link runTable} reproduces the paper's digit table over seeds. Target labels are never
 * used except to report test accuracy. Errors are the SDK's `GoldpanError`s.
 */
export * from "./config.js";
export type * from "./results.js";
export * from "./run.js";
export * from "./pairs.js";
export * from "./paper.js";
export * from "./stats.js";
export * from "./table.js";
export { formatStat } from "./render.js";
export { evaluate, GoldpanError, type EvalResult, type Progress, type RunOptions } from "@goldpan/sdk";
