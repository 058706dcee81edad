import { describe, expect, it } from "vitest";
import { ERROR_CODES, GoldpanError } from "@goldpan/sdk";
import { EXIT_CODES, exitCodeFor, exitCodesHelp } from "./exit-codes.js";

describe("exit codes", () => {
  it("has a row for every error code", () => {
    expect(Object.keys(EXIT_CODES).sort()).toEqual([...ERROR_CODES].sort());
  });

  it("maps the documented classes", () => {
    const exit = (code: (typeof ERROR_CODES)[number]) => exitCodeFor(new GoldpanError(code, "x"));
    expect(exit("E_CONFIG")).toBe(2);
    for (const code of ERROR_CODES.filter((c) => c.startsWith("E_DATA_"))) expect(exit(code)).toBe(3);
    expect(exit("E_DEVICE")).toBe(4);
    expect(exit("E_NAN_LOSS")).toBe(5);
    expect(exit("E_MEMORY")).toBe(8);
    expect(exit("E_CANCELLED")).toBe(130);
    expect(exit("E_INTERNAL")).toBe(1);
    expect(exitCodeFor(new Error("anything"))).toBe(1);
    expect(exitCodeFor(Object.assign(new Error("x"), { code: "E_DATA_TRUNCATED" }))).toBe(3);
  });

  it("documents each exit code once", () => {
    const help = exitCodesHelp();
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]) expect(help.match(new RegExp(`^ +${n}  `, "gm"))).toHaveLength(1);
    expect(help).toContain("[E_DATA_*]");
  });
});
