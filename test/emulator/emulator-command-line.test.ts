// The emulator started as a supervisor starts sd-webui: its command line, the --data-dir folder
// layout (subfolders included), --nowebui without the UI routes and --controlnet.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TSX_CLI = path.join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs");

let dataDir: string;
const children: ChildProcess[] = [];

/** Starts `emulator/main.ts` with `args` on a free port and answers its base URL once it listens. */
function startEmulatorProcess(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [TSX_CLI, "emulator/main.ts", "--port", "0", "--step-ms", "1", "--load-ms", "1", ...args], { cwd: REPO_ROOT });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const url = /listening on (\S+)/.exec(output)?.[1];
      if (url) resolve(url);
    });
    child.on("exit", (code) => reject(new Error(`emulator exited with ${code}: ${output}`)));
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-cli-"));
  await mkdir(path.join(dataDir, "models", "Stable-diffusion", "v2"), { recursive: true });
  await mkdir(path.join(dataDir, "models", "ControlNet"), { recursive: true });
  await mkdir(path.join(dataDir, "models", "Lora", "styles"), { recursive: true });
  await writeFile(path.join(dataDir, "models", "Stable-diffusion", "alpha.safetensors"), randomBytes(2048));
  await writeFile(path.join(dataDir, "models", "Stable-diffusion", "v2", "alpha.safetensors"), randomBytes(2048));
  await writeFile(path.join(dataDir, "models", "ControlNet", "control_v11p_sd15_canny.pth"), randomBytes(1024));
  await writeFile(path.join(dataDir, "models", "Lora", "styles", "ink.safetensors"), randomBytes(512));
});

afterAll(async () => {
  for (const child of children) child.kill();
  await rm(dataDir, { recursive: true, force: true });
});

describe("--data-dir --nowebui --controlnet", () => {
  let url: string;
  beforeAll(async () => {
    url = await startEmulatorProcess(["--api", "--nowebui", "--data-dir", dataDir, "--controlnet"]);
  });

  it("lists checkpoints and LoRAs from the data directory's folders and their subfolders", async () => {
    const models = (await (await fetch(`${url}/sdapi/v1/sd-models`)).json()) as { model_name: string; filename: string }[];
    expect(models.map((model) => model.filename).sort()).toEqual([
      path.join(dataDir, "models", "Stable-diffusion", "alpha.safetensors"),
      path.join(dataDir, "models", "Stable-diffusion", "v2", "alpha.safetensors"),
    ]);
    const loras = (await (await fetch(`${url}/sdapi/v1/loras`)).json()) as { name: string; path: string }[];
    expect(loras).toEqual([expect.objectContaining({ name: "ink", path: path.join(dataDir, "models", "Lora", "styles", "ink.safetensors") })]);
    const flags = (await (await fetch(`${url}/sdapi/v1/cmd-flags`)).json()) as Record<string, unknown>;
    expect(flags).toMatchObject({ nowebui: true, data_dir: dataDir, ckpt_dir: path.join(dataDir, "models", "Stable-diffusion") });
  });

  it("has no /internal/progress, as sd-webui's api_only() mounts no UI routes", async () => {
    const reply = await fetch(`${url}/internal/progress`, { method: "POST", body: JSON.stringify({ id_task: "x" }) });
    expect(reply.status).toBe(404);
    expect((await fetch(`${url}/internal/pending-tasks`)).status).toBe(404);
    expect((await fetch(`${url}/sdapi/v1/progress`)).status).toBe(200);
  });

  it("serves the ControlNet extension's routes with models from models/ControlNet", async () => {
    const list = (await (await fetch(`${url}/controlnet/model_list`)).json()) as { model_list: string[] };
    expect(list.model_list).toEqual([expect.stringMatching(/^control_v11p_sd15_canny \[[0-9a-f]{8}\]$/)]);
    expect(await (await fetch(`${url}/controlnet/version`)).json()).toEqual({ version: 2 });
    const modules = (await (await fetch(`${url}/controlnet/module_list`)).json()) as { module_list: string[] };
    expect(modules.module_list).toContain("canny");
  });
});

describe("without --nowebui and --controlnet", () => {
  let url: string;
  beforeAll(async () => {
    url = await startEmulatorProcess(["--api", "--data-dir", dataDir]);
  });

  it("serves /internal/progress and 404s the ControlNet routes", async () => {
    const reply = await fetch(`${url}/internal/progress`, { method: "POST", body: JSON.stringify({ id_task: "x" }) });
    expect(reply.status).toBe(200);
    expect(await reply.json()).toMatchObject({ active: false, queued: false });
    expect((await fetch(`${url}/controlnet/model_list`)).status).toBe(404);
    expect((await fetch(`${url}/controlnet/version`)).status).toBe(404);
  });

  it("refuses a ControlNet unit as sd-webui refuses an unknown always-on script", async () => {
    const reply = await fetch(`${url}/sdapi/v1/txt2img`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "x", steps: 1, width: 64, height: 64, alwayson_scripts: { controlnet: { args: [] } } }),
    });
    expect(reply.status).toBe(422);
    expect(await reply.json()).toMatchObject({ detail: "always on script controlnet not found" });
  });
});
