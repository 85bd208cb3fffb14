// sd-webui validates request bodies with pydantic v1 (fastapi 0.94 in its
// requirements_versions.txt), which coerces in lax mode: clients written against it send
// `"steps": "4"` or `"restore_faces": "true"` and get a picture. The gateway's schemas are
// strict, so the sd-webui surface first coerces the fields they know the way pydantic v1's
// validators do (pydantic/validators.py: int_validator, float_validator, bool_validator,
// str_validator). What pydantic refuses is left as it is, for the schema to refuse with
// FastAPI's 422.
import type { z } from "zod";
import type { ValidationItem } from "./errors";

type FieldKind = "int" | "float" | "bool" | "str";

const WRAPPERS = new Set(["optional", "nullable", "default"]);
const INT_STRING = /^\s*[+-]?[0-9]+\s*$/;
const FLOAT_STRING = /^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$/;
/** pydantic v1's BOOL_TRUE / BOOL_FALSE, compared after str.lower() (no strip). */
const BOOL_TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const BOOL_FALSE = new Set(["0", "off", "f", "false", "n", "no"]);

interface Introspected {
  def: { type: string; innerType?: Introspected; element?: Introspected };
  isInt?: boolean;
}

function unwrap(schema: Introspected): Introspected {
  let inner = schema;
  while (WRAPPERS.has(inner.def.type) && inner.def.innerType) inner = inner.def.innerType;
  return inner;
}

function kindOf(schema: Introspected): FieldKind | null {
  const inner = unwrap(schema);
  if (inner.def.type === "number") return inner.isInt ? "int" : "float";
  if (inner.def.type === "boolean") return "bool";
  if (inner.def.type === "string") return "str";
  return null;
}

/** The value as pydantic v1 would validate it for a field of this kind; unchanged when pydantic would refuse it. */
export function coerceValue(kind: FieldKind, value: unknown): unknown {
  switch (kind) {
    case "int":
      // int(v): whole numbers from strings, floats truncated, booleans 1 and 0.
      if (typeof value === "boolean") return value ? 1 : 0;
      if (typeof value === "number" && Number.isFinite(value)) return Math.trunc(value);
      if (typeof value === "string" && INT_STRING.test(value)) return Number.parseInt(value, 10);
      return value;
    case "float":
      if (typeof value === "boolean") return value ? 1 : 0;
      if (typeof value === "string" && FLOAT_STRING.test(value)) return Number(value);
      return value;
    case "bool":
      if (value === 1 || value === 0) return value === 1;
      if (typeof value === "string" && BOOL_TRUE.has(value.toLowerCase())) return true;
      if (typeof value === "string" && BOOL_FALSE.has(value.toLowerCase())) return false;
      return value;
    case "str":
      // str(v) for numbers, and for booleans (an int subclass in Python): "True" / "False".
      if (typeof value === "number") return String(value);
      if (typeof value === "boolean") return value ? "True" : "False";
      return value;
  }
}

/** A request body with the fields `schema` knows coerced as pydantic v1 would; other fields untouched. */
export function coerceLikePydantic(schema: z.ZodObject, body: unknown): unknown {
  if (!body || typeof body !== "object" || Array.isArray(body)) return body;
  const coerced: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const [key, field] of Object.entries(schema.shape as Record<string, Introspected>)) {
    const value = coerced[key];
    if (value === undefined || value === null) continue;
    const inner = unwrap(field);
    if (inner.def.type === "array" && inner.def.element && Array.isArray(value)) {
      const kind = kindOf(inner.def.element);
      if (kind) coerced[key] = value.map((item) => coerceValue(kind, item));
      continue;
    }
    const kind = kindOf(field);
    if (kind) coerced[key] = coerceValue(kind, value);
  }
  return coerced;
}

/** pydantic v1's type errors, by field kind (pydantic/errors.py: IntegerError, FloatError, BoolError, StrError). */
const TYPE_ERRORS: Record<FieldKind, { msg: string; type: string }> = {
  int: { msg: "value is not a valid integer", type: "type_error.integer" },
  float: { msg: "value is not a valid float", type: "type_error.float" },
  bool: { msg: "value could not be parsed to a boolean", type: "type_error.bool" },
  str: { msg: "str type expected", type: "type_error.str" },
};

/** A type error on a top-level field, worded as pydantic words it; other items as they are. */
export function pydanticTypeItem(schema: z.ZodObject, item: ValidationItem): ValidationItem {
  const [where, field, ...rest] = item.loc;
  if (where !== "body" || typeof field !== "string" || rest.length > 0 || !item.type.startsWith("type_error.")) return item;
  const known = (schema.shape as Record<string, Introspected>)[field];
  const kind = known ? kindOf(known) : null;
  return kind ? { loc: item.loc, ...TYPE_ERRORS[kind] } : item;
}
