/**
 * Command-line flags derived from the SDK's config schemas: one flag per config field, kebab-cased,
 * with the schema's kind, choices, default and description. Only names and a few CLI-specific
 * texts are stated here.
 */
import type { FieldInfo, FieldKind } from "@goldpan/sdk";

export interface FlagSpec {
  /** Without the dashes: "batch-size". */
  name: string;
  /** The config field it sets, or undefined for CLI-only flags (--json, --resume). */
  key: string | undefined;
  kind: FieldKind;
  choices?: readonly string[];
  /** A boolean written `--flag true|false` rather than as a switch (for fields whose default,
   * left to the core, may be true). */
  booleanValue?: true;
  /** As shown in help (`runs/<timestamp>`), not necessarily a value. */
  defaultText?: string;
  /** The value's name in help (`--out <file-or-dir>`), when the usual one does not fit. */
  valueName?: string;
  description: string;
}

/** Config fields whose flag is not just the kebab-cased key. */
const RENAMED: Readonly<Record<string, string>> = { dataDir: "data", outDir: "out", diagnosticsEvery: "every" };

/** `batchSize` → `batch-size`; a nested field's segments are joined: `pul.freezeClassifier` →
 * `pul-freeze-classifier`. */
export function flagName(key: string): string {
  return key
    .split(".")
    .map((part) => RENAMED[part] ?? part.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))
    .join("-");
}

/** `--batch-size` for an issue at `["batchSize"]`, `--pul-attach` at `["pul", "attach"]`,
 * `--pairs` at `["pairs", 1]` (an item of a list); the dotted path if it is not a flag. */
export function flagForPath(path: readonly (string | number)[]): string {
  const firstIndex = path.findIndex((p) => typeof p === "number");
  const keys = firstIndex === -1 ? path : path.slice(0, firstIndex);
  const flagLike = keys.length > 0 && path.slice(keys.length).every((p) => typeof p === "number");
  return flagLike ? `--${flagName(keys.join("."))}` : path.join(".");
}

export interface FieldOverride {
  description?: string;
  defaultText?: string;
  valueName?: string;
}

export function flagsFromFields(
  fields: readonly FieldInfo[],
  options: {
    omit?: readonly string[];
    overrides?: Readonly<Record<string, FieldOverride>>;
    /** Booleans take `true|false` instead of being switches. */
    booleanValues?: boolean;
  } = {},
): FlagSpec[] {
  return fields
    .filter((f) => !(options.omit ?? []).includes(f.key))
    .map((f) => {
      const o = options.overrides?.[f.key] ?? {};
      const spec: FlagSpec = { name: flagName(f.key), key: f.key, kind: f.kind, description: o.description ?? f.description };
      if (f.choices !== undefined) spec.choices = f.choices;
      if (f.kind === "boolean" && options.booleanValues === true) spec.booleanValue = true;
      // An empty list's default shows as nothing.
      const shown = f.default === undefined || f.kind === "boolean" || String(f.default) === "" ? undefined : String(f.default);
      const defaultText = o.defaultText ?? shown;
      if (defaultText !== undefined) spec.defaultText = defaultText;
      if (o.valueName !== undefined) spec.valueName = o.valueName;
      return spec;
    });
}

/** CLI-only flags. */
export const JSON_FLAG: FlagSpec = {
  name: "json",
  key: undefined,
  kind: "boolean",
  description: "Print one JSON object (the result, or {error}) on stdout and nothing else there.",
};
