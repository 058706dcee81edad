import { describe, expect, it } from "vitest";
import { ERROR_CODES, GoldpanError, checkpointFromMessage, normalizeError } from "./errors.js";

function addonError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("normalizeError", () => {
  it("keeps each stable code and the message", () => {
    for (const code of ERROR_CODES) {
      const cause = addonError(code, `boom ${code}`);
      const e = normalizeError(cause);
      expect(e).toBeInstanceOf(GoldpanError);
      expect(e).toBeInstanceOf(Error);
      expect(e.code).toBe(code);
      expect(e.message).toBe(`boom ${code}`);
      expect(e.cause).toBe(cause);
    }
  });

  it("extracts the checkpoint a cancel names", () => {
    const e = normalizeError(addonError("E_CANCELLED", "cancelled at epoch 1, step 3 (checkpoint: /r/last.safetensors)"));
    expect(e.code).toBe("E_CANCELLED");
    expect(e.checkpoint).toBe("/r/last.safetensors");
    expect(checkpointFromMessage("cancelled at epoch 1, step 3")).toBeUndefined();
  });

  it("turns napi statuses and plain errors into E_INTERNAL", () => {
    const e = normalizeError(addonError("InvalidArg", "Failed to convert"));
    expect(e.code).toBe("E_INTERNAL");
    expect(e.message).toBe("InvalidArg: Failed to convert");
    expect(normalizeError(new TypeError("x")).code).toBe("E_INTERNAL");
    expect(normalizeError("a string").message).toBe("a string");
    expect(normalizeError(undefined).code).toBe("E_INTERNAL");
  });

  it("turns Node system errors into E_IO", () => {
    const sys = Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT", syscall: "open" });
    expect(normalizeError(sys).code).toBe("E_IO");
  });

  it("passes GoldpanErrors through", () => {
    const e = new GoldpanError("E_DEVICE", "no cuda");
    expect(normalizeError(e)).toBe(e);
    expect(e.name).toBe("GoldpanError");
    expect(String(e)).toBe("GoldpanError: no cuda");
  });
});
