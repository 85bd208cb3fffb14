// The console at `/` and the API reference at `/docs` are the Worker's static assets, every file
// they load served from this origin (no CDN).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BASE } from "./helpers";

async function asset(path: string): Promise<Response> {
  return env.ASSETS.fetch(`${BASE}${path}`);
}

/** The src and href attributes of an HTML page. */
function references(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
}

describe("console and API reference assets", () => {
  it("serve the console at / and Swagger UI at /docs, loading only files of their own", async () => {
    for (const [path, marker] of [
      ["/", "/console.js"],
      ["/docs", "/swagger/swagger-ui-bundle.js"],
    ] as const) {
      const page = await asset(path);
      expect(page.status, path).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      const html = await page.text();
      expect(html).toContain(marker);
      for (const ref of references(html)) {
        expect(ref, `${path} loads ${ref}`).toMatch(/^\/(?!\/)/);
        if (ref.endsWith(".js") || ref.endsWith(".css")) expect((await asset(ref)).status, ref).toBe(200);
      }
    }
  });

  it("point Swagger UI at this Worker's /openapi.json and at no outside validator", async () => {
    const script = await (await asset("/docs.js")).text();
    expect(script).toContain("/openapi.json");
    expect(script).toMatch(/validatorUrl:null/);
  });
});
