// A model file's upload from the browser: one request with its progress, or for large files R2's
// multipart upload part by part, hashing as it goes (the complete call names the file's sha256).
import type { Api } from "./api";
import { Sha256 } from "./sha256";

const MiB = 1024 * 1024;
/** Bodies above this go multipart: a Worker takes request bodies up to 100 MB (500 MB on Enterprise). */
export const SINGLE_REQUEST_MAX_BYTES = 95 * MiB;
const PART_BYTES = 64 * MiB;

export async function uploadModelFile(
  api: Api,
  name: string,
  file: File,
  multipart: boolean,
  onProgress: (fraction: number) => void,
): Promise<{ sha256: string }> {
  const base = `/models/${encodeURIComponent(name)}/file`;
  if (!multipart) return api.upload("PUT", base, file, onProgress, { "content-type": "application/octet-stream" });
  const started = await api.call<{ uploadId: string; minPartBytes: number }>("POST", `${base}/uploads`);
  const uploadPath = `${base}/uploads/${encodeURIComponent(started.uploadId)}`;
  const partBytes = Math.max(started.minPartBytes, PART_BYTES);
  const hash = new Sha256();
  const parts: Array<{ partNumber: number; etag: string }> = [];
  try {
    for (let offset = 0, partNumber = 1; offset < file.size; offset += partBytes, partNumber++) {
      const part = file.slice(offset, offset + partBytes);
      hash.update(new Uint8Array(await part.arrayBuffer()));
      const done = offset;
      parts.push(await api.upload("PUT", `${uploadPath}/parts/${partNumber}`, part, (f) => onProgress((done + f * part.size) / file.size)));
    }
    return await api.call("POST", `${uploadPath}/complete`, { parts, sha256: hash.digestHex() });
  } catch (error) {
    await api.call("DELETE", uploadPath).catch(() => undefined);
    throw error;
  }
}
