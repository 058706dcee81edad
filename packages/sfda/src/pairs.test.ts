import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PAIRS, PAIR_NAMES, missingData } from "./pairs.js";

const dir = mkdtempSync(join(tmpdir(), "goldpan-sfda-pairs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("pairs", () => {
  it("are the paper's columns", () => {
    expect(PAIR_NAMES.map((p) => `${PAIRS[p].source}→${PAIRS[p].target} ${PAIRS[p].label}`)).toEqual([
      "mnist→usps M→U",
      "usps→mnist U→M",
      "svhn→mnist S→M",
    ]);
  });

  it("only s2m needs data that may be absent: SVHN's two .mat files", () => {
    const data = join(dir, "data");
    expect(missingData("m2u", data)).toBeUndefined();
    expect(missingData("u2m", data)).toBeUndefined();
    expect(missingData("s2m", data)).toBe(`SVHN not present in ${join(data, "svhn")}`);
    mkdirSync(join(data, "svhn"), { recursive: true });
    writeFileSync(join(data, "svhn", "train_32x32.mat"), "");
    expect(missingData("s2m", data)).toBe(`SVHN not present in ${join(data, "svhn")}`);
    writeFileSync(join(data, "svhn", "test_32x32.mat"), "");
    expect(missingData("s2m", data)).toBeUndefined();
  });

  it("asks for exactly those files", () => {
    const asked: string[] = [];
    missingData("s2m", "/d", (p) => {
      asked.push(p);
      return true;
    });
    expect(asked).toEqual(["/d/svhn/train_32x32.mat", "/d/svhn/test_32x32.mat"]);
  });
});
