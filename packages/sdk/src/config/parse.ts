import type { z } from "zod";
import { GoldpanError, type ConfigIssue } from "../errors.js";

/** zod's issues as ours: one per bad field (an unknown key becomes an issue at that key). */
export function toIssues(issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.map((p) => (typeof p === "number" ? p : String(p)));
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...path, key], message: "unknown field" });
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `  - ${i.path.length > 0 ? i.path.join(".") : "(config)"}: ${i.message}`).join("\n");
}

/**
 * Validates `input` against `schema`, filling defaults, or throws `GoldpanError` `E_CONFIG`
 * whose message lists every bad field and whose `issues` holds them.
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = toIssues(result.error.issues);
  const n = issues.length;
  throw new GoldpanError("E_CONFIG", `invalid ${what} (${n} problem${n === 1 ? "" : "s"}):\n${formatIssues(issues)}`, {
    cause: result.error,
    issues,
  });
}
