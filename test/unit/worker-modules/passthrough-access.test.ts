// Which sd-webui routes a tenant may run through the passthrough (src/sdapi/passthrough-access.ts).
import { describe, expect, it } from "vitest";
import { tenantMayPassthrough } from "../../../src/sdapi/passthrough-access";

describe("tenant passthrough allowlist", () => {
  it("allows generation and read-only routes, with or without a query", () => {
    expect(tenantMayPassthrough("POST", "/sdapi/v1/png-info")).toBe(true);
    expect(tenantMayPassthrough("POST", "/sdapi/v1/interrogate")).toBe(true);
    expect(tenantMayPassthrough("POST", "/controlnet/detect")).toBe(true);
    expect(tenantMayPassthrough("GET", "/controlnet/version")).toBe(true);
    expect(tenantMayPassthrough("GET", "/sdapi/v1/realesrgan-models?x=1")).toBe(true);
  });

  it.each([
    ["GET", "/sdapi/v1/cmd-flags"],
    ["GET", "/sdapi/v1/memory?detail=true"],
    ["POST", "/sdapi/v1/unload-checkpoint"],
    ["POST", "/sdapi/v1/reload-checkpoint"],
    ["POST", "/sdapi/v1/refresh-embeddings"],
    ["POST", "/sdapi/v1/train/embedding"],
    ["POST", "/sdapi/v1/create/hypernetwork"],
    ["POST", "/sdapi/v1/server-kill"],
    ["GET", "/sdapi/v1/extensions"],
    ["POST", "/sdapi/v1/options"],
    ["GET", "/sdapi/v1/no-such-route"],
  ] as const)("refuses %s %s", (method, path) => {
    expect(tenantMayPassthrough(method, path)).toBe(false);
  });

  it("matches the exact method and path: no other method, case, trailing slash or suffix", () => {
    expect(tenantMayPassthrough("GET", "/sdapi/v1/png-info")).toBe(false);
    expect(tenantMayPassthrough("DELETE", "/controlnet/detect")).toBe(false);
    expect(tenantMayPassthrough("POST", "/sdapi/v1/PNG-INFO")).toBe(false);
    expect(tenantMayPassthrough("POST", "/sdapi/v1/png-info/")).toBe(false);
    expect(tenantMayPassthrough("POST", "/sdapi/v1/png-info/../cmd-flags")).toBe(false);
  });
});
