// The pure checks behind "never an image from the wrong weights": where a checkpoint version
// lives, how sd-webui's titles map to it, sd-webui's reason for a failed load, and the result check.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { addonPath, checkpointPath, checkpointRelativePath, pathEndsWith } from "../../gpu-node/model-paths.ts";
import { loadFailureReason, resultHashProblem, titlePath } from "../../gpu-node/webui/loaded-model.ts";

const SHA = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa";
const model = { name: "v1-5", fileName: "v1-5.safetensors", sha256: SHA };

describe("checkpoint versions on disk", () => {
  it("keeps each version of a checkpoint in a folder named by its short hash", () => {
    expect(checkpointRelativePath(model)).toBe("6ce0161689/v1-5.safetensors");
    expect(checkpointPath("/data/models/Stable-diffusion", model)).toBe(path.join("/data/models/Stable-diffusion", "6ce0161689", "v1-5.safetensors"));
    expect(checkpointPath("/d", { ...model, sha256: `ff${SHA.slice(2)}` })).not.toBe(checkpointPath("/d", model));
  });

  it("maps sd-webui's titles and paths to that folder and file", () => {
    expect(titlePath("6ce0161689/v1-5.safetensors [6ce0161689]")).toBe("6ce0161689/v1-5.safetensors");
    expect(titlePath("6ce0161689\\v1-5.safetensors")).toBe("6ce0161689/v1-5.safetensors");
    expect(titlePath("/srv/sd/models/Stable-diffusion/6ce0161689/v1-5.safetensors")).toBe("6ce0161689/v1-5.safetensors");
    expect(titlePath("v1-5.safetensors [6ce0161689]")).toBe("v1-5.safetensors");
    expect(titlePath("")).toBeNull();
    expect(pathEndsWith("C:\\sd\\models\\Stable-diffusion\\6ce0161689\\v1-5.safetensors", "6ce0161689/v1-5.safetensors")).toBe(true);
    expect(pathEndsWith("/x/a6ce0161689/v1-5.safetensors", "6ce0161689/v1-5.safetensors")).toBe(false);
  });

  it("puts add-ons in the folder sd-webui reads for them, and refuses any other folder", () => {
    expect(addonPath("/data", { folder: "models/Lora", fileName: "bling.safetensors" })).toBe(path.join("/data", "models", "Lora", "bling.safetensors"));
    expect(addonPath("/data", { folder: "models/RealESRGAN", fileName: "x4.pth" })).toBe(path.join("/data", "models", "RealESRGAN", "x4.pth"));
    expect(addonPath("/data", { folder: "../etc", fileName: "passwd" })).toBeNull();
    expect(addonPath("/data", { folder: "models/Stable-diffusion", fileName: "x.safetensors" })).toBeNull();
  });
});

describe("sd-webui's reason for a failed load", () => {
  it("is its 'Failed to load checkpoint' line with the exception that caused it", () => {
    const printed = [
      "Loading weights [0123456789] from /d/models/Stable-diffusion/0123456789/broken.safetensors",
      "Failed to load checkpoint, restoring previous",
      "Loading weights [6ce0161689] from /d/models/Stable-diffusion/6ce0161689/v1-5.safetensors",
      "changing setting sd_model_checkpoint to 0123456789/broken.safetensors: RuntimeError",
      "Traceback (most recent call last):",
      '  File "/sd/modules/options.py", line 165, in set',
      "RuntimeError: Error(s) in loading state_dict for LatentDiffusion:",
    ];
    expect(loadFailureReason(printed)).toBe("Failed to load checkpoint, restoring previous: RuntimeError: Error(s) in loading state_dict for LatentDiffusion:");
  });

  it("is the exception alone when the file could not even be read, and nothing when sd-webui said nothing", () => {
    expect(loadFailureReason(["safetensors_rust.SafetensorError: Error while deserializing header: MetadataIncompleteBuffer"])).toBe(
      "safetensors_rust.SafetensorError: Error while deserializing header: MetadataIncompleteBuffer",
    );
    expect(loadFailureReason(["Model loaded in 2.1s"])).toBeNull();
  });
});

describe("the result check", () => {
  it("accepts sd-webui's answer only when its sd_model_hash is the task checkpoint's short hash", () => {
    expect(resultHashProblem({ sd_model_hash: "6ce0161689" }, model)).toBeNull();
    expect(resultHashProblem({ sd_model_hash: "6CE0161689" }, model)).toBeNull();
    expect(resultHashProblem({ sd_model_hash: "e1441589a6" }, model)).toMatch(/e1441589a6, not 6ce0161689/);
    expect(resultHashProblem({ seed: 1 }, model)).toMatch(/no sd_model_hash/);
    expect(resultHashProblem("not json", model)).toMatch(/no sd_model_hash/);
  });
});
