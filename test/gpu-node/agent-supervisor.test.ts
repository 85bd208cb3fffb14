// The sd-webui supervisor: start errors that say why (the tail of sd-webui's output), a deadline
// for a process that never answers, and crash recovery with the emulator as a real child process.
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { GpuNodeAgent } from "../../gpu-node/agent.ts";
import { WebuiStartError, WebuiSupervisor } from "../../gpu-node/webui/supervisor.ts";
import {
  agentFor,
  agentTestTeardown,
  checkpointsDirOf,
  emulatorCommand,
  modelBytes,
  REPO_ROOT,
  supervisedEmulator,
  tempDir,
  testLogger,
} from "./support/fixtures.ts";
import { TestGateway } from "./support/test-gateway.ts";

const { cleanups, gateways } = agentTestTeardown();

function nodeCommand(script: string): string {
  return `"${process.execPath}" -e "${script}" --`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("sd-webui supervisor", () => {
  it("reports the tail of sd-webui's output when it exits before it is ready", async () => {
    const supervisor = new WebuiSupervisor({
      mode: "spawn",
      command: nodeCommand(
        "console.log('Launching Web UI with arguments: ' + process.argv.slice(1).join(' ')); console.error('RuntimeError: Torch is not able to use GPU'); process.exit(3)",
      ),
      cwd: REPO_ROOT,
      port: 0,
      modelsDir: await tempDir("sup-models"),
      dataDir: await tempDir("sup-data"),
      startTimeoutMs: 20_000,
      logger: testLogger("supervisor"),
      echoOutput: false,
    });
    cleanups.push(() => supervisor.stop());
    supervisor.setExtraArgs("--medvram --xformers");

    const error = await supervisor.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WebuiStartError);
    const message = (error as Error).message;
    expect(message).toContain("exit code 3");
    expect(message).toContain("RuntimeError: Torch is not able to use GPU");
    // The pool's extra arguments were passed on.
    expect(message).toContain("--medvram --xformers");
  });

  it("gives up on an sd-webui that never answers, and kills it", async () => {
    const supervisor = new WebuiSupervisor({
      mode: "spawn",
      command: nodeCommand("console.log('loading forever'); setInterval(() => {}, 1000)"),
      cwd: REPO_ROOT,
      port: 0,
      modelsDir: await tempDir("sup-models"),
      dataDir: await tempDir("sup-data"),
      startTimeoutMs: 1_500,
      killGraceMs: 1_000,
      logger: testLogger("supervisor"),
      echoOutput: false,
    });
    cleanups.push(() => supervisor.stop());
    const starting = supervisor.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pid = supervisor.pid;
    const error = await starting.then(
      () => null,
      (e: unknown) => e,
    );

    expect((error as Error).message).toMatch(/not ready after/);
    expect((error as Error).message).toContain("loading forever");
    expect(pid).toBeDefined();
    expect(alive(pid!)).toBe(false);
  });

  it("fails the agent's start with the same reason, and leaves the gateway", async () => {
    const gateway = await TestGateway.start();
    cleanups.push(() => gateway.close());
    gateways.push(gateway);
    const agent = agentFor(gateway, {
      nodeId: "broken-node",
      webuiCmd: nodeCommand("console.error('ModuleNotFoundError: No module named torch'); process.exit(1)"),
      webuiDir: REPO_ROOT,
      webuiPort: 0,
      dataDir: await tempDir("sup-data"),
    });

    await expect(agent.start()).rejects.toThrow(/No module named torch/);
    expect(gateway.node("broken-node").deregistered).toBe(true);
    expect(agent.status).toBe("stopped");
  });

  it("refuses to start sd-webui on a port something else holds", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const supervisor = new WebuiSupervisor({
      mode: "spawn",
      command: nodeCommand("setInterval(() => {}, 1000)"),
      cwd: REPO_ROOT,
      port: (blocker.address() as net.AddressInfo).port,
      modelsDir: await tempDir("sup-models"),
      dataDir: await tempDir("sup-data"),
      startTimeoutMs: 5_000,
      logger: testLogger("supervisor"),
    });
    cleanups.push(() => supervisor.stop());

    await expect(supervisor.start()).rejects.toThrow(/already in use/);
    expect(supervisor.pid).toBeUndefined();
  });

  it("stops an sd-webui left behind by an agent that was killed, before starting its own", async () => {
    const gateway = await TestGateway.start();
    cleanups.push(() => gateway.close());
    gateways.push(gateway);
    const dataDir = await tempDir("sup-data");
    const modelsDir = checkpointsDirOf(dataDir);
    const pidFile = path.join(modelsDir, ".sdgate-webui.pid");
    // The agent CLI as its own process, killed like a machine losing it.
    const dead = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "gpu-node/main.ts",
        "--gateway",
        gateway.url,
        "--node-id",
        "killed-node",
        "--webui-port",
        "0",
        "--webui-cmd",
        emulatorCommand({ stepMs: 10, loadMs: 10 }),
        "--data-dir",
        dataDir,
        "--gpu-class",
        "test",
        "--gpu-memory-mb",
        "0",
      ],
      { cwd: REPO_ROOT, env: { ...process.env, SDGATE_NODE_TOKEN: gateway.token }, stdio: process.env.SDGATE_TEST_LOG ? "inherit" : "ignore" },
    );
    cleanups.push(async () => void dead.kill("SIGKILL"));
    await gateway.waitFor("the CLI agent to be up", () => (gateway.nodes.get("killed-node")?.heartbeats.length ?? 0) > 0, 30_000);
    const orphanPid = (JSON.parse(await fs.readFile(pidFile, "utf8")) as { pid: number }).pid;
    dead.kill("SIGKILL");
    await new Promise((resolve) => dead.once("exit", resolve));
    expect(alive(orphanPid)).toBe(true);
    cleanups.push(async () => void (alive(orphanPid) && process.kill(-orphanPid, "SIGKILL")));

    const successor = agentFor(gateway, {
      nodeId: "killed-node",
      ...supervisedEmulator({ stepMs: 10, loadMs: 10 }),
      dataDir,
    });
    cleanups.push(() => successor.stop({ drain: false }));
    await successor.start();

    expect(alive(orphanPid)).toBe(false);
    expect(successor.webuiPid).toBeDefined();
    expect(successor.webuiPid).not.toBe(orphanPid);
  });

  describe("with the emulator as sd-webui", () => {
    async function startSupervisedAgent(nodeId: string): Promise<{ gateway: TestGateway; agent: GpuNodeAgent }> {
      const gateway = await TestGateway.start();
      cleanups.push(() => gateway.close());
      gateways.push(gateway);
      gateway.addModel({ name: "demo-v1", bytes: modelBytes(32 * 1024, 3) });
      const agent = agentFor(gateway, {
        nodeId,
        ...supervisedEmulator({ stepMs: 40, loadMs: 10 }),
        dataDir: await tempDir("sup-data"),
      });
      cleanups.push(() => agent.stop({ drain: false }));
      await agent.start();
      return { gateway, agent };
    }

    it("fails the running task as retryable when sd-webui crashes, restarts it, and goes on", async () => {
      const { gateway, agent } = await startSupervisedAgent("crash-node");
      const firstPid = agent.webuiPid!;
      expect(firstPid).toBeDefined();

      const id = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "interrupted by a crash", steps: 50, width: 64, height: 64 } });
      await gateway.waitFor("the task to make progress", () => gateway.task(id).progress.some((report) => report.progress > 0));
      process.kill(-firstPid, "SIGKILL");

      const failure = await gateway.waitFor("the task to be failed", () => gateway.task(id).failures[0]);
      // A crash is the node's, not the task's: the Worker bounds it apart from the task's own failures.
      expect(failure).toMatchObject({ retryable: true, infrastructure: true });
      expect(failure.error).toMatch(/sd-webui/);
      // The Worker retried it; sd-webui came back and the retry succeeded.
      const task = await gateway.waitForEnd(id, 30_000);
      expect(task.status).toBe("succeeded");
      expect(task.attempts).toBe(2);
      expect(agent.webuiPid).toBeDefined();
      expect(agent.webuiPid).not.toBe(firstPid);

      const next = await gateway.waitForEnd(
        gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "after the crash", steps: 2, width: 64, height: 64 } }),
      );
      expect(next.status).toBe("succeeded");
    });

    it("restarts sd-webui when the heartbeat answer asks for it, once idle", async () => {
      const { gateway, agent } = await startSupervisedAgent("restart-node");
      const firstPid = agent.webuiPid!;
      gateway.requestWebuiRestart("restart-node");

      await gateway.waitFor("a new sd-webui process", () => agent.webuiPid !== undefined && agent.webuiPid !== firstPid, 30_000);
      expect(alive(firstPid)).toBe(false);
      const task = await gateway.waitForEnd(
        gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "after restart", steps: 2, width: 64, height: 64 } }),
      );
      expect(task.status).toBe("succeeded");
    });
  });
});
