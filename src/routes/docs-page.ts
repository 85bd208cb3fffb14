// GET /docs: a readable, self-contained page rendered from the same OpenAPI document that
// /openapi.json serves (no CDN assets: it works offline and behind strict CSPs).

interface Operation {
  summary?: string;
  tags?: string[];
  parameters?: Array<{ name: string; in: string; required?: boolean; description?: string; schema?: unknown }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

interface Document {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

const escapeHtml = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

function schemaBlock(schema: unknown): string {
  return schema ? `<pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre>` : "";
}

function operationHtml(path: string, method: string, op: Operation): string {
  const params = (op.parameters ?? [])
    .map(
      (p) => `<li><code>${escapeHtml(p.name)}</code> (${p.in}${p.required ? ", required" : ""})${p.description ? ` — ${escapeHtml(p.description)}` : ""}</li>`,
    )
    .join("");
  const body = Object.entries(op.requestBody?.content ?? {})
    .map(([type, c]) => `<h4>Body (${escapeHtml(type)})</h4>${schemaBlock(c.schema)}`)
    .join("");
  const responses = Object.entries(op.responses ?? {})
    .map(
      ([status, r]) =>
        `<li><b>${escapeHtml(status)}</b> ${escapeHtml(r.description ?? "")}${Object.values(r.content ?? {})
          .map((c) => `<details><summary>schema</summary>${schemaBlock(c.schema)}</details>`)
          .join("")}</li>`,
    )
    .join("");
  return `<section><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3><p>${escapeHtml(op.summary ?? "")}</p>${params ? `<h4>Parameters</h4><ul>${params}</ul>` : ""}${body}<h4>Responses</h4><ul>${responses}</ul></section>`;
}

export function renderDocsPage(doc: Document): string {
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] ?? "other";
      byTag.set(tag, [...(byTag.get(tag) ?? []), operationHtml(path, method, op)]);
    }
  }
  const nav = [...byTag.keys()].map((t) => `<a href="#${t}">${escapeHtml(t)}</a>`).join(" · ");
  const sections = [...byTag.entries()].map(([tag, ops]) => `<h2 id="${tag}">${escapeHtml(tag)}</h2>${ops.join("")}`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}section{border-top:1px solid #ddd;padding:.5rem 0}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:12px}.m{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:1px 6px}
.get{background:#2f7bd9}.post{background:#2a9d55}.put{background:#c98a12}.delete{background:#c33}</style></head>
<body><h1>${escapeHtml(doc.info.title)} <small>${escapeHtml(doc.info.version)}</small></h1><p>${escapeHtml(doc.info.description ?? "")}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Errors are <code>application/problem+json</code>.</p><nav>${nav}</nav>${sections}</body></html>`;
}
