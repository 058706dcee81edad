/**
 * The SDK's one error type. Every rejection and throw from `@goldpan/sdk` is a `GoldpanError`
 * whose `code` is one of {@link ERROR_CODES}; scripts match on the code, never on the message.
 */

/** Stable codes, as the core defines them. Codes are added, never renamed. */
export const ERROR_CODES = [
  "E_CONFIG",
  "E_DATA_MAGIC",
  "E_DATA_DIMS",
  "E_DATA_TRUNCATED",
  "E_DATA_FORMAT",
  "E_DATA_COUNT_MISMATCH",
  "E_DATA_LABEL",
  "E_DATA_NOT_FOUND",
  "E_DEVICE",
  "E_NAN_LOSS",
  "E_CANCELLED",
  "E_SHAPE",
  "E_MEMORY",
  "E_CHECKPOINT",
  "E_IO",
  "E_INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** One problem with a config field: `path` is the field (`["epochs"]`), `message` what is wrong. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

export interface GoldpanErrorOptions {
  cause?: unknown;
  /** For `E_CONFIG` from validation: every bad field. */
  issues?: ConfigIssue[];
  /** For `E_CANCELLED` / `E_NAN_LOSS`: the checkpoint the core wrote or kept, when there is one. */
  checkpoint?: string;
}

export class GoldpanError extends Error {
  override name = "GoldpanError";
  readonly code: ErrorCode;
  readonly issues?: ConfigIssue[];
  readonly checkpoint?: string;

  constructor(code: ErrorCode, message: string, options: GoldpanErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.issues !== undefined) this.issues = options.issues;
    if (options.checkpoint !== undefined) this.checkpoint = options.checkpoint;
  }
}

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && KNOWN.has(code);
}

/** The core ends cancel / NaN messages with `(checkpoint: <path>)`. */
const CHECKPOINT_SUFFIX = /\(checkpoint: (.+)\)\s*$/;

/** The checkpoint path a core error message names, if any. */
export function checkpointFromMessage(message: string): string | undefined {
  return CHECKPOINT_SUFFIX.exec(message)?.[1];
}

/**
 * Turns anything thrown by the addon (or by Node while the SDK does I/O) into a `GoldpanError`.
 * The addon's `code` is kept when it is one of ours; a Node system error (`ENOENT`, …) becomes
 * `E_IO`; anything else (napi's `InvalidArg`, a `TypeError`, a string) becomes `E_INTERNAL`.
 */
export function normalizeError(e: unknown): GoldpanError {
  if (e instanceof GoldpanError) return e;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const checkpoint = checkpointFromMessage(e.message);
    const options: GoldpanErrorOptions = { cause: e };
    if (checkpoint !== undefined) options.checkpoint = checkpoint;
    if (isErrorCode(code)) return new GoldpanError(code, e.message, options);
    if (typeof (e as { syscall?: unknown }).syscall === "string") {
      return new GoldpanError("E_IO", e.message, options);
    }
    const prefix = typeof code === "string" && code !== "" ? `${code}: ` : "";
    return new GoldpanError("E_INTERNAL", `${prefix}${e.message}`, options);
  }
  return new GoldpanError("E_INTERNAL", String(e), { cause: e });
}
