// /openapi.json documents every route the Worker serves (compared with the routes the Hono app
// really registers), with resolved schemas, the three ways to send a key, and an example request
// for each submit route.
import { describe, expect, it } from "vitest";
import { app } from "../../src/index";
import { call, json } from "./helpers";

interface Operation {
  tags?: string[];
  requestBody?: { content: Record<string, { example?: unknown }> };
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme?: string; name?: string; in?: string }> };
}

/** Hono's `/a/:b{regex}/*` as OpenAPI's `/a/{b}/{path}`. */
function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z]+)(\{[^}]*\})?/g, "{$1}").replace(/\/\*$/, "/{path}");
}

/** The sd-webui surface is mounted a second time under any prefix: the same routes, documented once. */
const PREFIXED = "/:prefix{.+}";

async function openApiDocument(): Promise<OpenApiDocument> {
  return json<OpenApiDocument>(await call("/openapi.json"), 200);
}

describe("/openapi.json", () => {
  it("lists exactly the routes the app serves, method by method", async () => {
    const doc = await openApiDocument();
    // Middleware is registered as ALL; every handler has a method of its own.
    const handlers = app.routes.filter((r) => r.method !== "ALL");
    const served = new Set(handlers.filter((r) => !r.path.startsWith(PREFIXED)).map((r) => `${r.method} ${openApiPath(r.path)}`));
    const prefixed = new Set(handlers.filter((r) => r.path.startsWith(PREFIXED)).map((r) => `${r.method} ${openApiPath(r.path.slice(PREFIXED.length))}`));
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)));

    expect([...served].filter((r) => !documented.has(r)).sort()).toEqual([]);
    expect([...documented].filter((r) => !served.has(r)).sort()).toEqual([]);
    expect([...prefixed].filter((r) => !served.has(r))).toEqual([]);
    // The routes the issue found missing are among them.
    for (const route of [
      "POST /uploads",
      "GET /images/{owner}/{file}",
      "PUT /models/{name}/file",
      "POST /models/{name}/file/uploads",
      "PUT /models/{name}/file/uploads/{uploadId}/parts/{partNumber}",
      "POST /models/{name}/file/uploads/{uploadId}/complete",
      "DELETE /models/{name}/file/uploads/{uploadId}",
      "GET /metrics",
      "GET /tasks/{taskId}/events",
      "GET /nodes/models/{name}/file",
      "GET /nodes/tasks/{taskId}/inputs/{key}",
      "PUT /nodes/tasks/{taskId}/images/{index}",
      "POST /nodes/tasks/{taskId}/result",
    ])
      expect(documented).toContain(route);
  });

  it("resolves every $ref and names the three auth schemes", async () => {
    const doc = await openApiDocument();
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((name) => !(name in doc.components.schemas))).toEqual([]);
    expect(JSON.stringify(doc)).not.toMatch(/"\$ref":"(?!#\/components\/schemas\/)/);
    const schemes = Object.values(doc.components.securitySchemes);
    expect(schemes).toContainEqual(expect.objectContaining({ type: "http", scheme: "bearer" }));
    expect(schemes).toContainEqual(expect.objectContaining({ type: "apiKey", in: "header", name: "Token" }));
    expect(schemes).toContainEqual(expect.objectContaining({ type: "http", scheme: "basic" }));
  });

  it("gives an example request for each submit route, and the node protocol a tag of its own", async () => {
    const doc = await openApiDocument();
    for (const path of [
      "/txt2img",
      "/img2img",
      "/extra_images",
      "/sdapi/v1/txt2img",
      "/sdapi/v1/img2img",
      "/sdapi/v1/extra-single-image",
      "/sdapi/v1/extra-batch-images",
    ]) {
      expect(doc.paths[path]?.post?.requestBody?.content["application/json"]?.example, path).toBeTypeOf("object");
    }
    const nodeProtocol = Object.entries(doc.paths).filter(([path]) => path.startsWith("/nodes/"));
    expect(nodeProtocol.length).toBeGreaterThan(8);
    for (const [path, methods] of nodeProtocol) for (const op of Object.values(methods)) expect(op.tags, path).toEqual(["node protocol"]);
  });
});
