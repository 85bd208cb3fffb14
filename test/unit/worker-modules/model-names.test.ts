// Finding a registered model by any name sd-webui accepts for a checkpoint (src/db/models.ts):
// clients send `sd_model_checkpoint` / `override_settings` values copied from sd-webui's lists.
// test/unit/worker-modules: pure functions of Worker modules, run in Node but type-checked with the
// Worker's tsconfig.json, whose globals (D1Database) and extensionless imports these modules use.
import { describe, expect, it } from "vitest";
import { checkpointTitle, type ModelRow, matchModel } from "../../../src/db/models";

const SHA_V15 = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa";
const SHA_ANIME = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

function model(name: string, fileName: string, sha256: string | null): ModelRow {
  return {
    name,
    type: "checkpoint",
    fileName,
    ossPath: `models/${name}/${fileName}`,
    etag: null,
    sha256,
    sizeBytes: null,
    folder: null,
    failedReason: null,
    failedAt: null,
    loadSeconds: 8,
    inferenceSeconds: 3,
    registeredAt: 0,
    updatedAt: 0,
  };
}

const v15 = model("sd15", "v1-5-pruned-emaonly.safetensors", SHA_V15);
const anime = model("anime", "anything.v3.ckpt", SHA_ANIME);
const noFile = model("pending", "pending.safetensors", null);
const ALL = [v15, anime, noFile];

describe("checkpointTitle", () => {
  it("is sd-webui's `<file> [<first 10 hex of sha256>]`", () => {
    expect(checkpointTitle(v15)).toBe("v1-5-pruned-emaonly.safetensors [6ce0161689]");
  });

  it("is the file name alone while the hash is unknown", () => {
    expect(checkpointTitle(noFile)).toBe("pending.safetensors");
  });
});

describe("matchModel", () => {
  it("finds by registered name", () => {
    expect(matchModel(ALL, "sd15")).toBe(v15);
  });

  it("finds by sd-webui title, which is what /sdapi/v1/sd-models lists", () => {
    expect(matchModel(ALL, checkpointTitle(v15))).toBe(v15);
    expect(matchModel(ALL, "anything.v3.ckpt [a1b2c3d4e5]")).toBe(anime);
  });

  it("finds by file name with or without its extension", () => {
    expect(matchModel(ALL, "v1-5-pruned-emaonly.safetensors")).toBe(v15);
    expect(matchModel(ALL, "v1-5-pruned-emaonly")).toBe(v15);
  });

  it("strips only the last extension of a file name with dots", () => {
    expect(matchModel(ALL, "anything.v3")).toBe(anime);
    expect(matchModel(ALL, "anything")).toBeNull();
  });

  it("takes a [hash] suffix of 8 (legacy) or 10 hex as decoration, even a stale one", () => {
    expect(matchModel(ALL, "v1-5-pruned-emaonly.safetensors [deadbeef]")).toBe(v15);
    expect(matchModel(ALL, "v1-5-pruned-emaonly [0123456789]")).toBe(v15);
    expect(matchModel(ALL, "sd15 [6ce0161689]")).toBe(v15);
  });

  it("does not strip a bracketed suffix that is not a short hash", () => {
    expect(matchModel(ALL, "sd15 [1234567]")).toBeNull();
    expect(matchModel(ALL, "sd15 [final]")).toBeNull();
  });

  it("finds a model whose hash is unknown by its file name", () => {
    expect(matchModel(ALL, "pending")).toBe(noFile);
    expect(matchModel(ALL, "pending.safetensors")).toBe(noFile);
  });

  it("ignores surrounding whitespace", () => {
    expect(matchModel(ALL, "  sd15\t")).toBe(v15);
    expect(matchModel(ALL, " anything.v3.ckpt [a1b2c3d4e5] ")).toBe(anime);
  });

  it("finds by full sha256 or a prefix of at least 8 hex (sd-webui's short hash is 10)", () => {
    expect(matchModel(ALL, SHA_V15)).toBe(v15);
    expect(matchModel(ALL, SHA_V15.slice(0, 10))).toBe(v15);
    expect(matchModel(ALL, SHA_V15.slice(0, 8))).toBe(v15);
  });

  it("refuses a sha prefix shorter than 8, too likely to be ambiguous", () => {
    expect(matchModel(ALL, SHA_V15.slice(0, 7))).toBeNull();
    expect(matchModel(ALL, "6")).toBeNull();
  });

  it("prefers a model's own name over another model's file name", () => {
    const named = model("anything.v3", "named.safetensors", null);
    expect(matchModel([anime, named], "anything.v3")).toBe(named);
  });

  it("prefers a name, title or file name over a hash prefix", () => {
    const hashLike = model(SHA_ANIME.slice(0, 8), "other.safetensors", null);
    expect(matchModel([anime, hashLike], SHA_ANIME.slice(0, 8))).toBe(hashLike);
  });

  it("finds nothing for unknown, empty or blank names", () => {
    expect(matchModel(ALL, "sdxl")).toBeNull();
    expect(matchModel(ALL, "")).toBeNull();
    expect(matchModel(ALL, "   ")).toBeNull();
    expect(matchModel([], "sd15")).toBeNull();
  });

  it("is case-sensitive, as file names on the nodes are", () => {
    expect(matchModel(ALL, "SD15")).toBeNull();
    expect(matchModel(ALL, "V1-5-pruned-emaonly.safetensors")).toBeNull();
  });
});
