// The agent's folders and sd-webui command as an operator configures them: sd-webui's data
// directory (where add-ons go) defaults to the sd-webui folder, the checkpoint folder to the data
// directory's models/Stable-diffusion, and the default command never lets sd-webui download a
// model of its own.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_WEBUI_CMD, parseCli } from "../../gpu-node/config.ts";

const base = ["--gateway", "https://sdgate.example.com", "--token", "sdg_node_x"];

function configOf(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const result = parseCli([...base, ...argv], env);
  if (result.help) throw new Error("help");
  return result.config;
}

describe("agent configuration", () => {
  it("puts add-ons under sd-webui's folder and checkpoints in its models/Stable-diffusion by default", () => {
    const config = configOf(["--webui-dir", "/opt/sd"]);
    expect(config.dataDir).toBe(path.resolve("/opt/sd"));
    expect(config.modelsDir).toBe(path.resolve("/opt/sd/models/Stable-diffusion"));
  });

  it("takes sd-webui's --data-dir from --data-dir or SDGATE_DATA_DIR; --models-dir still wins for checkpoints", () => {
    expect(configOf(["--webui-dir", "/opt/sd", "--data-dir", "/srv/sd-data"]).modelsDir).toBe(path.resolve("/srv/sd-data/models/Stable-diffusion"));
    expect(configOf(["--webui-dir", "/opt/sd"], { SDGATE_DATA_DIR: "/srv/env-data" }).dataDir).toBe(path.resolve("/srv/env-data"));
    const both = configOf(["--data-dir", "/srv/sd-data", "--models-dir", "/mnt/ckpt"]);
    expect(both.dataDir).toBe(path.resolve("/srv/sd-data"));
    expect(both.modelsDir).toBe(path.resolve("/mnt/ckpt"));
  });

  it("starts sd-webui API-only on the data directory, without its model download", () => {
    expect(configOf([]).webuiCmd).toBe(DEFAULT_WEBUI_CMD);
    expect(DEFAULT_WEBUI_CMD.split(" ")).toEqual(
      expect.arrayContaining(["--api", "--nowebui", "--no-download-sd-model", "--data-dir", "{data_dir}", "{port}"]),
    );
  });

  it("takes --ram-checkpoints within sd-webui's limit of 10 models, and leaves it to the machine's RAM without it", () => {
    expect(configOf([]).ramCheckpoints).toBeUndefined();
    expect(configOf(["--ram-checkpoints", "0"]).ramCheckpoints).toBe(0);
    expect(configOf([], { SDGATE_RAM_CHECKPOINTS: "3" }).ramCheckpoints).toBe(3);
    expect(() => configOf(["--ram-checkpoints", "10"])).toThrow(ConfigError);
    expect(() => configOf(["--ram-checkpoints", "-1"])).toThrow(/--ram-checkpoints/);
  });
});
