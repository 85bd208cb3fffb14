// What the emulator test files share: one JSON call against a running emulator.

export interface Reply {
  status: number;
  headers: Headers;
  /** The JSON body, inspected freely. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary sd-webui answers
  body: any;
}

/** One request to the emulator at `baseUrl`; a string body is sent as it is, anything else as JSON. */
export async function callEmulator(baseUrl: string, method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}
