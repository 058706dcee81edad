import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Progress } from "@goldpan/sdk";
import { formatEpoch, formatStep, progressReporter } from "./progress.js";

const step: Progress = {
  kind: "step",
  epoch: 1,
  epochs: 2,
  step: 50,
  stepInEpoch: 50,
  stepsPerEpoch: 79,
  loss: 0.41234,
  accuracy: 0.875,
  imagesPerSec: 4321.4,
  elapsedSec: 0.8,
};

describe("progress", () => {
  it("formats one line per event", () => {
    expect(formatStep(step)).toBe("epoch 1/2 step 50/79 loss 0.4123 acc 87.5% 4321 img/s");
    expect(formatEpoch({ ...step, kind: "epoch", testLoss: 0.1, testAccuracy: 0.97, checkpoint: "r/epoch-1.safetensors" })).toBe(
      "epoch 1/2 done: train loss 0.4123 acc 87.5% | test loss 0.1000 acc 97.0% | 0.8s | r/epoch-1.safetensors",
    );
  });

  it("leaves out what an adaptation does not compute (NaN) and names what it evaluates on", () => {
    const adapt: Progress = { ...step, accuracy: Number.NaN };
    expect(formatStep(adapt)).toBe("epoch 1/2 step 50/79 loss 0.4123 4321 img/s");
    const epoch: Progress = { ...step, kind: "epoch", loss: Number.NaN, accuracy: Number.NaN, testLoss: 0.5, testAccuracy: 0.812 };
    expect(formatEpoch(epoch, { evaluation: "target test" })).toBe("epoch 1/2 done: target test loss 0.5000 acc 81.2% | 0.8s");
    const out = new PassThrough();
    const r = progressReporter(out, { evaluation: "held-out" });
    r.update({ ...step, kind: "epoch", testLoss: 0.1, testAccuracy: 0.9 });
    expect(String(out.read())).toBe("epoch 1/2 done: train loss 0.4123 acc 87.5% | held-out loss 0.1000 acc 90.0% | 0.8s\n");
  });

  it("writes plain lines when the stream is not a TTY", () => {
    const out = new PassThrough();
    const r = progressReporter(out);
    r.update(step);
    r.stop();
    expect(String(out.read())).toBe(`${formatStep(step)}\n`);
  });
});
