import { z } from "zod";
import * as f from "./fields.js";

export const BENCHMARK_MODES = ["train", "infer"] as const;

/** Throughput of one model on synthetic batches (no data needed). */
export const BenchmarkConfigSchema = z.strictObject({
  model: f.modelName().default("lenet5").describe("Model to time; `goldpan models` lists them."),
  batchSize: f.positiveInt().default(64).describe("Images per batch."),
  mode: z
    .enum(BENCHMARK_MODES, { error: `must be one of ${BENCHMARK_MODES.join(", ")}` })
    .default("train")
    .describe("train: forward + backward + SGD step; infer: forward only."),
  iters: f.positiveInt().default(20).describe("Timed iterations."),
  warmup: f.nonNegativeInt().default(3).describe("Untimed iterations first."),
  seed: f.seed().default(0).describe("Seed for weights and synthetic inputs."),
});

export type BenchmarkConfig = z.output<typeof BenchmarkConfigSchema>;
export type BenchmarkConfigInput = z.input<typeof BenchmarkConfigSchema>;
