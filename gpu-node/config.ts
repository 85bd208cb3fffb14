// Agent configuration: command-line flags, falling back to SDGATE_* environment variables, then
// defaults; validated with zod. `agentConfigSchema` is also what GpuNodeAgent's constructor
// parses, so tests and harnesses pass the same fields as an object.
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { MAX_RAM_CHECKPOINTS } from "./ram-checkpoints.ts";

// --no-download-sd-model: with an empty checkpoint folder, sd-webui otherwise downloads a 4 GB
// model at start and on refresh (modules/sd_models.py list_models). --data-dir: the folders the
// agent fills (checkpoints and add-ons) are sd-webui's own.
export const DEFAULT_WEBUI_CMD = "python launch.py --api --nowebui --no-download-sd-model --data-dir {data_dir} --port {port}";
export const DEFAULT_WEBUI_PORT = 7861;
export const DEFAULT_CACHE_BUDGET_GB = 50;
export const DEFAULT_PROGRESS_INTERVAL_MS = 500;
export const DEFAULT_WEBUI_START_TIMEOUT_S = 600;

export function defaultNodeId(): string {
  const id = os
    .hostname()
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 128);
  return id.length > 0 ? id : "gpu-node";
}

const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch {
      return false;
    }
  }, "must be an http(s) URL")
  .transform((value) => value.replace(/\/+$/, ""));

export const agentConfigSchema = z
  .object({
    /** Base URL of the Worker (the node protocol lives under /nodes). */
    gatewayUrl: httpUrl,
    /** Node token, sent as `Authorization: Bearer`. */
    token: z.string().min(1, "a node token is required"),
    nodeId: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only")
      .default(defaultNodeId),
    /** Attach to this sd-webui instead of starting one. */
    webuiUrl: httpUrl.optional(),
    /** Command that starts sd-webui; `{port}`, `{data_dir}` and `{models_dir}` are substituted. */
    webuiCmd: z.string().min(1).default(DEFAULT_WEBUI_CMD),
    /** Working directory of the sd-webui command. */
    webuiDir: z
      .string()
      .min(1)
      .default(() => process.cwd()),
    /** Port for the sd-webui the agent starts; 0 picks a free one. */
    webuiPort: z.coerce.number().int().min(0).max(65535).default(DEFAULT_WEBUI_PORT),
    /** sd-webui `--api-auth` credentials, `user:pass`. */
    webuiAuth: z
      .string()
      .regex(/^[^:]+:.+$/, "must be user:pass")
      .optional(),
    /** How long sd-webui may take to answer GET /sdapi/v1/sd-models after it is started. */
    webuiStartTimeoutS: z.coerce.number().positive().default(DEFAULT_WEBUI_START_TIMEOUT_S),
    /** sd-webui's --data-dir: add-ons go to its models/Lora, models/VAE, … Default: webuiDir. */
    dataDir: z.string().min(1).optional(),
    /** sd-webui's checkpoint folder. Default: <dataDir>/models/Stable-diffusion. */
    modelsDir: z.string().min(1).optional(),
    cacheBudgetGb: z.coerce.number().positive().default(DEFAULT_CACHE_BUDGET_GB),
    /** Checkpoints sd-webui holds in RAM besides the loaded one; 0 = none. Default: from the machine's RAM (ram-checkpoints.ts). */
    ramCheckpoints: z.coerce.number().int().min(0).max(MAX_RAM_CHECKPOINTS).optional(),
    /** Defaults to the first GPU's name from nvidia-smi, else "unknown". */
    gpuClass: z.string().min(1).optional(),
    /** Defaults to the first GPU's memory from nvidia-smi, else 0. */
    gpuMemoryMb: z.coerce.number().int().nonnegative().optional(),
    /** The node group it scales with (see GET /autoscale); default: the Worker derives it from the GPU class and memory. */
    group: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only")
      .optional(),
    progressIntervalMs: z.coerce.number().int().min(50).max(10_000).default(DEFAULT_PROGRESS_INTERVAL_MS),
    logLevel: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  })
  .transform((config) => {
    const dataDir = path.resolve(config.dataDir ?? config.webuiDir);
    return {
      ...config,
      dataDir,
      modelsDir: path.resolve(config.modelsDir ?? path.join(dataDir, "models", "Stable-diffusion")),
      webuiDir: path.resolve(config.webuiDir),
    };
  });

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;

interface FlagSpec {
  flag: string;
  key: keyof AgentConfigInput;
  env: string;
  value: string;
  help: string;
}

const FLAGS: readonly FlagSpec[] = [
  { flag: "--gateway", key: "gatewayUrl", env: "SDGATE_GATEWAY", value: "URL", help: "Worker base URL (required)" },
  { flag: "--token", key: "token", env: "SDGATE_NODE_TOKEN", value: "TOKEN", help: "node token (required; prefer the env var: flags show in `ps`)" },
  { flag: "--node-id", key: "nodeId", env: "SDGATE_NODE_ID", value: "ID", help: "stable node id (default: host name)" },
  { flag: "--webui-url", key: "webuiUrl", env: "SDGATE_WEBUI_URL", value: "URL", help: "attach to a running sd-webui instead of starting one" },
  {
    flag: "--webui-cmd",
    key: "webuiCmd",
    env: "SDGATE_WEBUI_CMD",
    value: "CMD",
    help: `command that starts sd-webui; {port}, {data_dir} and {models_dir} are substituted, the pool's extra args appended (default: "${DEFAULT_WEBUI_CMD}")`,
  },
  { flag: "--webui-dir", key: "webuiDir", env: "SDGATE_WEBUI_DIR", value: "DIR", help: "working directory for --webui-cmd (default: current directory)" },
  {
    flag: "--webui-port",
    key: "webuiPort",
    env: "SDGATE_WEBUI_PORT",
    value: "PORT",
    help: `port for the started sd-webui, 0 = any free port (default: ${DEFAULT_WEBUI_PORT})`,
  },
  { flag: "--webui-auth", key: "webuiAuth", env: "SDGATE_WEBUI_AUTH", value: "USER:PASS", help: "sd-webui --api-auth credentials" },
  {
    flag: "--webui-start-timeout-s",
    key: "webuiStartTimeoutS",
    env: "SDGATE_WEBUI_START_TIMEOUT_S",
    value: "S",
    help: `how long sd-webui may take to become ready (default: ${DEFAULT_WEBUI_START_TIMEOUT_S})`,
  },
  {
    flag: "--data-dir",
    key: "dataDir",
    env: "SDGATE_DATA_DIR",
    value: "DIR",
    help: "sd-webui's --data-dir: checkpoints and add-ons (models/Lora, models/VAE, models/ControlNet, embeddings, …) go under it (default: --webui-dir)",
  },
  {
    flag: "--models-dir",
    key: "modelsDir",
    env: "SDGATE_MODELS_DIR",
    value: "DIR",
    help: "sd-webui's checkpoint folder (default: <data-dir>/models/Stable-diffusion; another one needs --ckpt-dir {models_dir} in --webui-cmd)",
  },
  {
    flag: "--cache-budget-gb",
    key: "cacheBudgetGb",
    env: "SDGATE_CACHE_BUDGET_GB",
    value: "GB",
    help: `disk budget for downloaded checkpoints and add-ons, least recently used evicted first (default: ${DEFAULT_CACHE_BUDGET_GB})`,
  },
  {
    flag: "--ram-checkpoints",
    key: "ramCheckpoints",
    env: "SDGATE_RAM_CHECKPOINTS",
    value: "N",
    help:
      "checkpoints sd-webui keeps in RAM besides the loaded one, so that switching back to one takes a second or two instead of a load from disk; " +
      `0 = none, at most ${MAX_RAM_CHECKPOINTS} (default: as many of the largest checkpoint on disk as fit in half the machine's RAM)`,
  },
  {
    flag: "--gpu-class",
    key: "gpuClass",
    env: "SDGATE_GPU_CLASS",
    value: "NAME",
    help: 'GPU class reported for placement (default: nvidia-smi\'s GPU name, else "unknown")',
  },
  {
    flag: "--gpu-memory-mb",
    key: "gpuMemoryMb",
    env: "SDGATE_GPU_MEMORY_MB",
    value: "MB",
    help: "GPU memory reported for placement (default: from nvidia-smi, else 0)",
  },
  {
    flag: "--group",
    key: "group",
    env: "SDGATE_NODE_GROUP",
    value: "NAME",
    help: "node group it scales with (default: <gpu class>-<GB>gb, e.g. nvidia-l4-24gb)",
  },
  {
    flag: "--progress-interval-ms",
    key: "progressIntervalMs",
    env: "SDGATE_PROGRESS_INTERVAL_MS",
    value: "MS",
    help: `how often progress is polled and reported (default: ${DEFAULT_PROGRESS_INTERVAL_MS})`,
  },
  { flag: "--log-level", key: "logLevel", env: "SDGATE_LOG_LEVEL", value: "LEVEL", help: "debug | info | warn | error | silent (default: info)" },
];

export function helpText(): string {
  const lines = [
    "sdgate-gpu-node — runs sdgate tasks on this machine's sd-webui",
    "",
    "Usage: sdgate-gpu-node --gateway URL [options]     (or: npm run gpu-node -- --gateway URL ...)",
    "",
    "Each option can also be given by the environment variable shown.",
    "",
  ];
  for (const spec of FLAGS) {
    lines.push(`  ${`${spec.flag} ${spec.value}`.padEnd(30)} ${spec.env}`);
    lines.push(`      ${spec.help}`);
  }
  lines.push(`  ${"-h, --help".padEnd(30)} show this help`);
  lines.push(
    "",
    "Signals: the first SIGTERM/SIGINT stops claiming, finishes the current task and deregisters;",
    "a second one interrupts sd-webui and exits at once. When the fleet scales in and picks this",
    "node (the heartbeat answers drain), it does the same as on the first signal and exits 0.",
  );
  return lines.join("\n");
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export type CliParseResult = { help: true } | { help: false; config: AgentConfig };

/** Reads flags (`--x v` or `--x=v`), then the environment, and validates the result. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliParseResult {
  const byFlag = new Map(FLAGS.map((spec) => [spec.flag, spec]));
  const input: Record<string, string> = {};
  for (const spec of FLAGS) {
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== "") input[spec.key] = fromEnv;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { help: true };
    if (arg === "--") continue;
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byFlag.get(flag);
    if (!spec) throw new ConfigError(`unknown option "${flag}" (see --help)`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
      i++;
    }
    input[spec.key] = value;
  }
  const parsed = agentConfigSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? "");
      const spec = FLAGS.find((candidate) => candidate.key === key);
      const name = spec ? `${spec.flag} (${spec.env})` : key;
      const missing = issue.code === "invalid_type" && input[key] === undefined;
      return `${name}: ${missing ? "is required" : issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return { help: false, config: parsed.data };
}
