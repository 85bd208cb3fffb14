// The local stack's hygiene: a gateway that stops, or fails to start, leaves no temporary folder
// behind (Miniflare's own, the bundle, its state), and `npm start` on a busy port says so in one line.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { portIsFree, ROOT, startGateway } from "../../scripts/local-stack.ts";

/** A port held by another server for the test's length. */
async function busyPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** What is left in `dir`, but tsx's compile cache (`tsx-<uid>`, kept between runs by design). */
const leftIn = (dir: string) => readdirSync(dir).filter((name) => !name.startsWith("tsx-"));

describe("local stack", () => {
  // The gateway process inherits TMPDIR: a folder of this test's own shows what it leaves behind.
  let tmp: string;
  const previousTmp = process.env.TMPDIR;
  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "sdgate-tmp-check-"));
    process.env.TMPDIR = tmp;
  });
  afterEach(() => {
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
    rmSync(tmp, { recursive: true, force: true });
  });

  it("a stopped gateway leaves no temporary folder behind", async () => {
    const gateway = await startGateway({ logLevel: "none" });
    expect((await fetch(`${gateway.url}/health`)).status).toBeLessThan(500);
    await gateway.stop();
    expect(leftIn(tmp)).toEqual([]);
  });

  it("a gateway that fails to start leaves no temporary folder behind", async () => {
    const { port, server } = await busyPort();
    try {
      await expect(startGateway({ port, logLevel: "none" })).rejects.toThrow(/did not start/);
    } finally {
      server.close();
    }
    expect(leftIn(tmp)).toEqual([]);
  });

  it("npm start on a busy port says so in one line", async () => {
    const { port, server } = await busyPort();
    try {
      expect(await portIsFree(port)).toBe(false);
      const run = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), path.join(ROOT, "scripts/start.ts")], {
        cwd: ROOT,
        env: { ...process.env, SDGATE_PORT: String(port) },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim()).toBe(`sdgate: port ${port} is in use; set SDGATE_PORT (e.g. SDGATE_PORT=8788 npm start)`);
      expect(run.stdout).toBe("");
    } finally {
      server.close();
    }
  });
});
