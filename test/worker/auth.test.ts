// Who may call what: key forms, roles, revocation, deployed Workers refusing development secrets.

import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEV_ADMIN_TOKEN, DEV_SIGNING_SECRET } from "../../src/config";
import app from "../../src/index";
import { ADMIN, BASE, call, createKey, json } from "./helpers";

describe("API keys", () => {
  it("refuses requests without a key, or with an unknown one, as problem+json", async () => {
    const missing = await call("/tasks");
    expect(missing.status).toBe(401);
    expect(missing.headers.get("content-type")).toContain("application/problem+json");
    const body = await json<{ code: string; status: number; title: string; detail: string; type: string; instance: string }>(missing);
    expect(body).toMatchObject({ code: "unauthorized", status: 401, instance: "/tasks" });
    expect((await call("/tasks", { token: "sdg_user_nope" })).status).toBe(401);
  });

  it("accepts the key as Bearer, as the original Token header, and as the Basic password", async () => {
    const key = await createKey("user");
    expect((await call("/tasks", { token: key })).status).toBe(200);
    expect((await call("/tasks", { headers: { token: key } })).status).toBe(200);
    expect((await call("/tasks", { headers: { authorization: `Basic ${btoa(`anyone:${key}`)}` } })).status).toBe(200);
    expect((await call("/tasks", { headers: { authorization: `Basic ${btoa(`:${key}`)}` } })).status).toBe(200);
    expect((await call("/tasks", { headers: { authorization: `Basic ${btoa("anyone:wrong")}` } })).status).toBe(401);
  });

  it("stores only hashes, shows the token once and lists keys without it", async () => {
    const created = await json<{ id: string; token: string; tokenPrefix: string }>(
      await call("/keys", { token: ADMIN, body: { name: "ci", role: "user" } }),
      201,
    );
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(created.id).first<Record<string, string>>();
    expect(Object.values(row!)).not.toContain(created.token);
    const listed = await json<Array<Record<string, unknown>>>(await call("/keys", { token: ADMIN }), 200);
    const mine = listed.find((k) => k.id === created.id)!;
    expect(mine).toMatchObject({ name: "ci", role: "user", tokenPrefix: created.tokenPrefix });
    expect(JSON.stringify(listed)).not.toContain(created.token);
  });

  it("stops a revoked key at once", async () => {
    const created = await json<{ id: string; token: string }>(await call("/keys", { token: ADMIN, body: { name: "gone", role: "user" } }), 201);
    expect((await call("/tasks", { token: created.token })).status).toBe(200);
    const revoked = await json<{ revokedAt: string | null }>(await call(`/keys/${created.id}`, { method: "DELETE", token: ADMIN }), 200);
    expect(revoked.revokedAt).not.toBeNull();
    expect((await call("/tasks", { token: created.token })).status).toBe(401);
  });

  it("keeps each role to its routes", async () => {
    const user = await createKey("user");
    const node = await createKey("node");
    const admin = await createKey("admin");
    expect((await call("/keys", { token: user })).status).toBe(403);
    expect((await call("/nodes", { token: user })).status).toBe(403);
    expect((await call("/models", { token: user, body: { name: "x" } })).status).toBe(403);
    expect((await call("/tasks", { token: node })).status).toBe(403);
    expect((await call("/nodes/register", { token: user, body: {} })).status).toBe(403);
    expect((await call("/nodes/register", { token: admin, body: {} })).status).toBe(403);
    expect((await call("/keys", { token: admin })).status).toBe(200);
    expect((await call("/tasks", { token: admin })).status).toBe(200);
    const forbidden = await json<{ code: string }>(await call("/metrics", { token: user }), 403);
    expect(forbidden.code).toBe("forbidden");
  });
});

describe("production", () => {
  async function fetchWith(overrides: Partial<Env>): Promise<Response> {
    return app.fetch(new Request(`${BASE}/models`, { headers: { authorization: `Bearer ${ADMIN}` } }), { ...env, ...overrides }, createExecutionContext());
  }

  const REAL_ADMIN_TOKEN = "a-real-production-admin-token-1234";
  const REAL_SIGNING_SECRET = "a-real-production-signing-secret";

  it("the Worker tests run on dev.vars, whose secrets are the ones the Worker refuses outside development", () => {
    expect(env.ENVIRONMENT).toBe("development");
    expect(env.ADMIN_TOKEN).toBe(DEV_ADMIN_TOKEN);
    expect(env.SIGNING_SECRET).toBe(DEV_SIGNING_SECRET);
  });

  it.each([
    ["missing", undefined],
    ["production", "production"],
    ["Production", "Production"],
    ["staging", "staging"],
    ["development with a space", "development "],
  ])("refuses the development token or signing secret when ENVIRONMENT is %s", async (_, environment) => {
    for (const overrides of [{}, { ADMIN_TOKEN: REAL_ADMIN_TOKEN }, { SIGNING_SECRET: REAL_SIGNING_SECRET }]) {
      const res = await fetchWith({ ENVIRONMENT: environment, ...overrides });
      const body = await json<{ code: string; detail: string }>(res, 500);
      expect(body.code).toBe("misconfigured");
      expect(body.detail).toContain("ENVIRONMENT=development");
    }
  });

  it("accepts the development secrets only with ENVIRONMENT=development exactly", async () => {
    expect((await fetchWith({ ENVIRONMENT: "development" })).status).toBe(200);
  });

  it("runs with real secrets", async () => {
    const res = app.fetch(
      new Request(`${BASE}/models`, { headers: { authorization: `Bearer ${REAL_ADMIN_TOKEN}` } }),
      { ...env, ENVIRONMENT: "production", ADMIN_TOKEN: REAL_ADMIN_TOKEN, SIGNING_SECRET: REAL_SIGNING_SECRET },
      createExecutionContext(),
    );
    expect((await res).status).toBe(200);
  });
});
