// Command line for the sd-webui emulator. It also takes a real sd-webui's command line
// (--api, --nowebui, --listen, --data-dir, --ckpt-dir; other flags are ignored with a note), so a
// supervisor can start either one the same way.
import { parseArgs } from "node:util";
import { z } from "zod";
import { startEmulator } from "./server.ts";

const USAGE = `Usage: tsx emulator/main.ts (--data-dir DIR | --models-dir DIR) [options]

An AUTOMATIC1111 sd-webui emulator: same API, deterministic pictures, no GPU.

Options:
  --data-dir DIR           sd-webui's data directory: DIR/models/Stable-diffusion, DIR/models/VAE,
                           DIR/models/Lora, DIR/models/ControlNet, DIR/embeddings, DIR/models/ESRGAN …
                           (subfolders are scanned too)
  --models-dir DIR         checkpoint folder (.safetensors/.ckpt); alias --ckpt-dir; without
                           --data-dir the data directory is DIR/../..
  --nowebui                API only, as sd-webui's --nowebui: no /internal/progress
  --controlnet             pretend the sd-webui-controlnet extension is installed (emulator only)
  --port N                 port to listen on (default 7861, as sd-webui --nowebui; 0 = any)
  --host ADDR              address to bind (default 127.0.0.1; --listen means 0.0.0.0)
  --step-ms N              time per sampling step per image, ms (default 50)
  --load-ms N              time to load a checkpoint from its file, ms (default 1000)
  --ram-load-ms N          time to switch to a checkpoint held in RAM (settings sd_checkpoints_limit,
                           sd_checkpoint_cache), ms (default 200)
  --live-preview-every N   live preview every N steps (default 2; -1 = none)
  --api-auth USER:PASS     HTTP Basic auth on the core API
  --base-path /PREFIX      serve every route under this path prefix
  --help                   show this help

sd-webui flags --api and --listen are accepted; other unknown flags are ignored.

Model files: any file of random bytes loads as a checkpoint; a file with a safetensors header loads
only if it is complete and does not declare another type (__metadata__.sdgate_emulator_type, or no
model.diffusion_model.* tensor); otherwise the load fails as in sd-webui (see emulator/model-file-kind.ts).`;

const numberArg = (flag: string) =>
  z
    .string({ error: `${flag} needs a value` })
    .trim()
    .regex(/^-?\d+(\.\d+)?$/, `${flag} must be a number`)
    .transform(Number);

const cliSchema = z
  .object({
    dataDir: z.string({ error: "--data-dir needs a value" }).min(1).optional(),
    modelsDir: z.string({ error: "--models-dir needs a value" }).min(1).optional(),
    apiOnly: z.boolean(),
    controlnet: z.boolean(),
    port: numberArg("--port").pipe(z.number().int().min(0).max(65535)).default(7861),
    host: z.string({ error: "--host needs a value" }).min(1).optional(),
    listen: z.boolean(),
    stepMs: numberArg("--step-ms").pipe(z.number().min(0)).default(50),
    loadMs: numberArg("--load-ms").pipe(z.number().min(0)).default(1000),
    ramLoadMs: numberArg("--ram-load-ms").pipe(z.number().min(0)).default(200),
    livePreviewEvery: numberArg("--live-preview-every").pipe(z.number().int().min(-1)).default(2),
    apiAuth: z
      .string({ error: "--api-auth needs USER:PASS" })
      .regex(/^[^:,]+:[^,]*$/, "--api-auth must be USER:PASS")
      .transform((value) => {
        const separator = value.indexOf(":");
        return { username: value.slice(0, separator), password: value.slice(separator + 1) };
      })
      .optional(),
    basePath: z
      .string({ error: "--base-path needs a value" })
      .regex(/^(\/\S*)?$/, "--base-path must start with /")
      .default(""),
  })
  .refine((config) => config.dataDir !== undefined || config.modelsDir !== undefined, "--data-dir DIR or --models-dir DIR is required");

function parseCommandLine(argv: string[]) {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: {
      "data-dir": { type: "string" },
      "models-dir": { type: "string" },
      "ckpt-dir": { type: "string" },
      controlnet: { type: "boolean" },
      port: { type: "string" },
      host: { type: "string" },
      "step-ms": { type: "string" },
      "load-ms": { type: "string" },
      "ram-load-ms": { type: "string" },
      "live-preview-every": { type: "string" },
      "api-auth": { type: "string" },
      "base-path": { type: "string" },
      listen: { type: "boolean" },
      api: { type: "boolean" },
      nowebui: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const known = new Set([
    "data-dir",
    "controlnet",
    "models-dir",
    "ckpt-dir",
    "port",
    "host",
    "step-ms",
    "load-ms",
    "ram-load-ms",
    "live-preview-every",
    "api-auth",
    "base-path",
    "listen",
    "api",
    "nowebui",
    "help",
  ]);
  const ignored = [...tokens.flatMap((token) => (token.kind === "option" && !known.has(token.name) ? [token.rawName] : [])), ...positionals];
  const parsed = cliSchema.safeParse({
    dataDir: values["data-dir"],
    modelsDir: values["models-dir"] ?? values["ckpt-dir"],
    apiOnly: values.nowebui === true,
    controlnet: values.controlnet === true,
    port: values.port,
    host: values.host,
    listen: values.listen === true,
    stepMs: values["step-ms"],
    loadMs: values["load-ms"],
    ramLoadMs: values["ram-load-ms"],
    livePreviewEvery: values["live-preview-every"],
    apiAuth: values["api-auth"],
    basePath: values["base-path"],
  });
  return { help: values.help === true, ignored, parsed };
}

async function main(): Promise<void> {
  const { help, ignored, parsed } = parseCommandLine(process.argv.slice(2));
  if (help) {
    console.log(USAGE);
    return;
  }
  if (!parsed.success) {
    console.error(parsed.error.issues.map((issue) => `error: ${issue.message}`).join("\n"));
    console.error(`\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (ignored.length > 0) console.error(`Ignoring sd-webui arguments the emulator does not use: ${ignored.join(" ")}`);
  const config = parsed.data;
  const emulator = await startEmulator({
    dataDir: config.dataDir,
    modelsDir: config.modelsDir,
    apiOnly: config.apiOnly,
    controlnet: config.controlnet,
    port: config.port,
    host: config.host ?? (config.listen ? "0.0.0.0" : "127.0.0.1"),
    stepMs: config.stepMs,
    loadMs: config.loadMs,
    ramLoadMs: config.ramLoadMs,
    livePreviewEvery: config.livePreviewEvery,
    auth: config.apiAuth ?? null,
    basePath: config.basePath,
  });
  console.log(`Emulator listening on ${emulator.url}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`Emulator stopping (${signal})`);
    void emulator.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  console.error("Emulator failed to start:", error instanceof Error ? error.message : error);
  process.exit(1);
});
