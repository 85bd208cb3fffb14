// The agent reads the Worker's 409s by their code: only stale_lease means the task is no longer
// its own, node_replaced means another agent took the node id, and any other 409 is a refusal.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClient, GatewayHttpError, isNodeReplaced, StaleLeaseError } from "../../gpu-node/gateway-client.ts";
import { createLogger } from "../../gpu-node/logger.ts";

let server: http.Server;
let client: GatewayClient;

/** Every call answers 409 with the code that stands as the node id in its path. */
beforeAll(async () => {
  server = http.createServer((req, res) => {
    const code = new URL(req.url ?? "/", "http://test").pathname.split("/")[2];
    req.resume();
    res.writeHead(409, { "content-type": "application/problem+json" }).end(JSON.stringify({ status: 409, code, detail: `refused with ${code}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  client = new GatewayClient({ baseUrl: `http://127.0.0.1:${port}`, token: "t", userAgent: "test", logger: createLogger({ level: "silent" }) });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** What the client throws for a deregistration the Worker refuses with `code`. */
async function refusal(code: string): Promise<unknown> {
  return client.deregister(code, "instance-1").then(
    () => null,
    (error: unknown) => error,
  );
}

describe("gateway client 409s", () => {
  it("takes stale_lease as a lost lease", async () => {
    const error = await refusal("stale_lease");
    expect(error).toBeInstanceOf(StaleLeaseError);
    expect(isNodeReplaced(error)).toBe(false);
  });

  it("takes node_replaced as replaced, not as a lost lease", async () => {
    const error = await refusal("node_replaced");
    expect(error).not.toBeInstanceOf(StaleLeaseError);
    expect(isNodeReplaced(error)).toBe(true);
  });

  it("takes any other 409 as a plain refusal", async () => {
    const error = await refusal("task_finished");
    expect(error).toBeInstanceOf(GatewayHttpError);
    expect(error).not.toBeInstanceOf(StaleLeaseError);
    expect(isNodeReplaced(error)).toBe(false);
  });
});
