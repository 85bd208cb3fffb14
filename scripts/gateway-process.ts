// The Worker in a process of its own, started by startGateway (local-stack.ts): wrangler bundles
// it as `wrangler deploy` would upload it, and Miniflare runs the bundle with the bindings
// wrangler reads from wrangler.toml, on local D1/R2/Durable Objects with migrations applied —
// without the live-reload proxy `wrangler dev` puts in front of every request (that is `npm run
// dev`). It reports its URL over IPC once listening, and stops on SIGTERM or SIGINT, or when its
// parent goes away. Every temporary folder it makes (the bundle, Miniflare's own) lives under one
// it owns and removes before it exits, however the start or the stop went.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { DEV_VARS } from "./dev-secrets.ts";
import { type GatewayOptions, ROOT, WRANGLER_ENV } from "./local-stack.ts";

const wranglerBin = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const WRANGLER_CONFIG = path.join(ROOT, "wrangler.toml");

function wrangler(args: string[], extraEnv: Record<string, string> = {}): void {
  const run = spawnSync(process.execPath, [wranglerBin, ...args], { cwd: ROOT, env: { ...process.env, ...WRANGLER_ENV, ...extraEnv }, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`wrangler ${args.slice(0, 2).join(" ")} failed:\n${run.stdout}\n${run.stderr}`);
}

/** `wrangler d1 migrations apply --local` against the persistence folder the Worker will use. */
function applyMigrations(persistDir: string): void {
  wrangler(["d1", "migrations", "apply", "sdgate", "--local", "--persist-to", persistDir], { CI: "true" });
}

/** The Worker bundled as `wrangler deploy` would upload it (dry run, nothing is sent). */
function bundleWorker(outDir: string): string {
  wrangler(["deploy", "--dry-run", "--outdir", outDir]);
  return path.join(outDir, "index.js");
}

const LOG_LEVELS = { none: LogLevel.NONE, error: LogLevel.ERROR, warn: LogLevel.WARN, info: LogLevel.INFO, debug: LogLevel.DEBUG } as const;

/** The Worker served by Miniflare in this process. */
async function serveWorker(options: GatewayOptions & { persistDir: string }): Promise<{ url: string; dispose(): Promise<void> }> {
  applyMigrations(options.persistDir);
  const bundleDir = mkdtempSync(path.join(tempRoot, "sdgate-bundle-"));
  const scriptPath = bundleWorker(bundleDir);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(WRANGLER_CONFIG);
  const level = options.logLevel ?? "warn";
  // The same folders `wrangler dev --persist-to` and `wrangler d1 ... --local` use.
  const state = path.join(options.persistDir, "v3");
  const miniflare = new Miniflare({
    ...workerOptions,
    name: "sdgate",
    modules: true,
    modulesRoot: bundleDir,
    scriptPath,
    // As `npm run dev`: dev.vars, a local .dev.vars over it (wrangler reads that one), then the caller's.
    bindings: { ...DEV_VARS, ...workerOptions.bindings, ...(options.vars ?? {}) },
    // Clients reach the Worker itself, as on Cloudflare, not through Miniflare's entry worker
    // (dev conveniences such as pretty error pages, which cost about a millisecond per request).
    host: "127.0.0.1",
    port: 0,
    unsafeDirectSockets: [{ host: "127.0.0.1", port: options.port ?? 0 }],
    log: new Log(LOG_LEVELS[level]),
    ...(level === "none" ? { handleRuntimeStdio: () => undefined } : {}),
    d1Persist: path.join(state, "d1"),
    r2Persist: path.join(state, "r2"),
    durableObjectsPersist: path.join(state, "do"),
  });
  try {
    await miniflare.ready;
  } catch (error) {
    await miniflare.dispose().catch(() => undefined);
    throw error;
  }
  const url = (await miniflare.unsafeGetDirectURL()).origin;
  return { url, dispose: () => miniflare.dispose() };
}

// Miniflare makes a temporary folder under os.tmpdir() and, on dispose(), removes it without
// waiting: a process that exits straight after leaves it behind. So this process's temporary
// folders (and wrangler's, which inherits TMPDIR) go under one it removes itself.
const tempRoot = mkdtempSync(path.join(os.tmpdir(), "sdgate-gateway-"));
process.env.TMPDIR = tempRoot;
const removeTempRoot = () => rmSync(tempRoot, { recursive: true, force: true, maxRetries: 5 });

const options = JSON.parse(process.argv[2] ?? "{}") as GatewayOptions & { persistDir: string };
let worker: Awaited<ReturnType<typeof serveWorker>>;
try {
  worker = await serveWorker(options);
} catch (error) {
  removeTempRoot();
  throw error;
}
process.send?.({ url: worker.url });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker.dispose();
  removeTempRoot();
  process.exit(0);
}
// wrangler and Miniflare, once imported, answer SIGTERM and SIGINT with an immediate exit, which
// would leave the temporary folders behind: a stop here disposes of everything first.
process.removeAllListeners("SIGTERM");
process.removeAllListeners("SIGINT");
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.on("disconnect", () => void stop());
