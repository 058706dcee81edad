import { describe, expect, it } from "vitest";
import { mean, percent, sampleStd, summarize } from "./stats.js";

describe("stats", () => {
  it("mean and sample std (n − 1) match hand-computed values", () => {
    // 90, 92, 94: mean 92; squared deviations 4 + 0 + 4 = 8; 8 / 2 = 4; std 2.
    expect(mean([90, 92, 94])).toBe(92);
    expect(sampleStd([90, 92, 94])).toBe(2);
    // 1, 2, 3, 4: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; 5 / 3; std √(5/3).
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(sampleStd([1, 2, 3, 4])).toBeCloseTo(Math.sqrt(5 / 3), 12);
    // 77.5, 80.5: mean 79; (2.25 + 2.25) / 1 = 4.5; std √4.5 ≈ 2.1213.
    expect(sampleStd([77.5, 80.5])).toBeCloseTo(2.1213203435596424, 12);
  });

  it("one seed has std 0; none has NaN", () => {
    expect(summarize([91.35])).toEqual({ mean: 91.35, std: 0, values: [91.35] });
    expect(mean([])).toBeNaN();
    expect(sampleStd([])).toBeNaN();
  });

  it("summarize copies the values", () => {
    const v = [1, 3];
    const s = summarize(v);
    v.push(5);
    expect(s).toEqual({ mean: 2, std: Math.SQRT2, values: [1, 3] });
  });

  it("percent has no binary noise (0.29 → 29, not 28.999…96)", () => {
    expect(0.29 * 100).not.toBe(29);
    expect(percent(0.29)).toBe(29);
    expect(0.686 * 100).not.toBe(68.6);
    expect(percent(0.686)).toBe(68.6);
    expect(percent(0.9135)).toBe(91.35);
    expect(percent(1)).toBe(100);
  });
});
