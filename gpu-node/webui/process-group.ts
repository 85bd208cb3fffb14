// sd-webui runs as the leader of a process group of its own: python plus whatever it starts
// (workers holding the port or GPU memory) are signalled and stopped together. A pid file names
// the running leader, so an agent that died without cleaning up (SIGKILL, power loss) does not
// leave its successor facing a busy port and a full GPU.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../logger.ts";

/** Waiting for a group that did not take SIGTERM (or SIGKILL) gives up after this. */
const AFTER_KILL_WAIT_MS = 5_000;
const GROUP_POLL_MS = 100;

/** Starts `program` as the leader of a new process group, stdout and stderr piped. */
export function spawnGroupLeader(program: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): ChildProcess {
  return spawn(program, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
}

/** Sends `signal` to every process in the group led by `pid`; false when there is no such group. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the group, then SIGKILL to whatever is left of it after `graceMs`. Resolves once the
 * leader has exited (`exited`), or gives up waiting a few seconds after the SIGKILL.
 */
export async function stopGroup(pid: number, exited: Promise<unknown>, graceMs: number, onForcedKill: () => void): Promise<void> {
  const deadline = Date.now() + graceMs;
  if (!signalGroup(pid, "SIGTERM")) {
    await Promise.race([exited, sleep(1_000)]);
    return;
  }
  await Promise.race([exited, sleep(graceMs)]);
  // The leader may be gone while others in its group linger.
  while (groupAlive(pid) && Date.now() < deadline) await sleep(GROUP_POLL_MS);
  if (groupAlive(pid)) {
    onForcedKill();
    signalGroup(pid, "SIGKILL");
  }
  await Promise.race([exited, sleep(AFTER_KILL_WAIT_MS)]);
}

/** What the pid file records about the running group leader. */
export interface PidRecord {
  pid: number;
  argv: string[];
  startedAt: string;
}

export function writePidFile(pidFile: string, record: PidRecord): Promise<void> {
  return fs.writeFile(pidFile, JSON.stringify(record));
}

/**
 * Stops the group a pid file names, when its leader still runs the command that was recorded
 * (a reused pid is left alone), then removes the pid file.
 */
export async function reapLeftoverGroup(pidFile: string, graceMs: number, log: Logger): Promise<void> {
  let record: PidRecord;
  try {
    record = JSON.parse(await fs.readFile(pidFile, "utf8")) as PidRecord;
  } catch {
    return;
  }
  const cmdline = await fs.readFile(`/proc/${record.pid}/cmdline`, "utf8").catch(() => null);
  const running = cmdline?.split("\0").filter(Boolean).join("\0");
  if (typeof record.pid === "number" && Array.isArray(record.argv) && running === record.argv.join("\0") && groupAlive(record.pid)) {
    log.warn(`stopping sd-webui (pid ${record.pid}) left over from an earlier run`);
    signalGroup(record.pid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (groupAlive(record.pid) && Date.now() < deadline) await sleep(GROUP_POLL_MS);
    if (groupAlive(record.pid)) signalGroup(record.pid, "SIGKILL");
    while (groupAlive(record.pid) && Date.now() < deadline + AFTER_KILL_WAIT_MS) await sleep(GROUP_POLL_MS);
  }
  await fs.rm(pidFile, { force: true });
}
