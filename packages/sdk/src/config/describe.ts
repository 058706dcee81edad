/**
 * Reads a config schema's fields back as plain data (kind, choices, default, description), so
 * tools such as the CLI derive their flags and help from the schemas instead of restating them.
 */
import { z } from "zod";

/** `list`: an array of enum values (`["m2u", "u2m"]`) or of free text (`["conv1", "fc3"]`). */
export type FieldKind = "boolean" | "int" | "number" | "string" | "enum" | "list";

export interface FieldInfo {
  /** The field's name; a field of a nested object is dotted (`pul.attach`). */
  key: string;
  kind: FieldKind;
  /** For `enum` and a `list` of enum values: the allowed values. */
  choices?: readonly string[];
  /** The schema's default, when it has one. */
  default?: unknown;
  /** Whether the field may be left out (it has a default or is optional). */
  optional: boolean;
  description: string;
}

function kindOf(schema: z.ZodType, key: string): Pick<FieldInfo, "kind" | "choices"> {
  if (schema instanceof z.ZodBoolean) return { kind: "boolean" };
  if (schema instanceof z.ZodNumber) return { kind: schema.isInt ? "int" : "number" };
  if (schema instanceof z.ZodString) return { kind: "string" };
  if (schema instanceof z.ZodEnum) return { kind: "enum", choices: schema.options.map(String) };
  if (schema instanceof z.ZodArray && schema.element instanceof z.ZodEnum) {
    return { kind: "list", choices: schema.element.options.map(String) };
  }
  if (schema instanceof z.ZodArray && schema.element instanceof z.ZodString) return { kind: "list" };
  // A value read then converted (a size, `4GiB` or bytes): as its input; text if it may be text.
  if (schema instanceof z.ZodPipe) return kindOf(schema.in as z.ZodType, key);
  if (schema instanceof z.ZodUnion && schema.options.some((o) => o instanceof z.ZodString)) return { kind: "string" };
  throw new Error(`describeFields: field ${key} has an unsupported schema type ${schema.def.type}`);
}

/** The fields of an object schema, in declaration order; a nested object's fields follow in its
 * place, dotted (`pul.classes`), optional when the object is. */
export function describeFields(schema: z.ZodObject): FieldInfo[] {
  return fieldsOf(schema, "", false);
}

function fieldsOf(schema: z.ZodObject, prefix: string, parentOptional: boolean): FieldInfo[] {
  return Object.entries(schema.shape).flatMap(([name, outer]) => {
    const key = `${prefix}${name}`;
    let inner = outer as z.ZodType;
    let optional = parentOptional;
    let defaultValue: unknown;
    let hasDefault = false;
    for (;;) {
      if (inner instanceof z.ZodDefault) {
        optional = true;
        hasDefault = true;
        defaultValue = inner.def.defaultValue;
        inner = inner.def.innerType as z.ZodType;
      } else if (inner instanceof z.ZodOptional) {
        optional = true;
        inner = inner.def.innerType as z.ZodType;
      } else break;
    }
    if (inner instanceof z.ZodObject) return fieldsOf(inner, `${key}.`, optional);
    const info: FieldInfo = { key, ...kindOf(inner, key), optional, description: outer.description ?? inner.description ?? "" };
    if (hasDefault) info.default = defaultValue;
    return [info];
  });
}
