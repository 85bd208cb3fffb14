// sd-webui's pydantic v1 lax coercion, as the sd-webui surface applies it (src/sdapi/pydantic-coercion.ts).
// test/unit/worker-modules: pure functions of Worker modules, run in Node but type-checked with the
// Worker's tsconfig.json.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { coerceLikePydantic, coerceValue } from "../../../src/sdapi/pydantic-coercion";

describe("coerceValue", () => {
  it("makes ints as int() does: numeric strings, truncated floats, booleans", () => {
    expect(coerceValue("int", "4")).toBe(4);
    expect(coerceValue("int", " -1 ")).toBe(-1);
    expect(coerceValue("int", 4.7)).toBe(4);
    expect(coerceValue("int", true)).toBe(1);
    expect(coerceValue("int", "4.5")).toBe("4.5");
    expect(coerceValue("int", "four")).toBe("four");
  });

  it("makes floats from numeric strings", () => {
    expect(coerceValue("float", "7")).toBe(7);
    expect(coerceValue("float", "7.5")).toBe(7.5);
    expect(coerceValue("float", "1e-2")).toBe(0.01);
    expect(coerceValue("float", "seven")).toBe("seven");
  });

  it("makes booleans from pydantic's true and false words and 0/1", () => {
    for (const yes of ["true", "TRUE", "1", "yes", "on", "t", "y", 1]) expect(coerceValue("bool", yes)).toBe(true);
    for (const no of ["false", "0", "no", "off", "f", "n", 0]) expect(coerceValue("bool", no)).toBe(false);
    expect(coerceValue("bool", "maybe")).toBe("maybe");
    expect(coerceValue("bool", 2)).toBe(2);
  });

  it("makes strings from numbers as str() does", () => {
    expect(coerceValue("str", 5)).toBe("5");
    expect(coerceValue("str", true)).toBe("True");
  });
});

describe("coerceLikePydantic", () => {
  const schema = z.looseObject({
    steps: z.number().int().optional(),
    restore_faces: z.boolean().nullable().optional(),
    styles: z.array(z.string()).optional(),
    override_settings: z.record(z.string(), z.unknown()).optional(),
  });

  it("coerces known fields, list items included, and leaves the rest alone", () => {
    const body = { steps: "20", restore_faces: "false", styles: [1], override_settings: { steps: "3" }, unknown: "7" };
    expect(coerceLikePydantic(schema, body)).toEqual({ steps: 20, restore_faces: false, styles: ["1"], override_settings: { steps: "3" }, unknown: "7" });
    expect(body.steps).toBe("20");
  });
});
