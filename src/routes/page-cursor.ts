// Opaque cursors of newest-first listings (GET /tasks, GET /uploads): the last item's creation
// time and id, base64url-encoded.
import { base64url, decodeBase64 } from "../crypto";
import { ApiError } from "../errors";

export function encodeCursor(createdAt: number, id: string): string {
  return base64url(new TextEncoder().encode(`${createdAt}:${id}`));
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const bytes = decodeBase64(cursor);
    if (!bytes) throw new Error("bad cursor");
    const text = new TextDecoder().decode(bytes);
    const [createdAt, id] = [text.slice(0, text.indexOf(":")), text.slice(text.indexOf(":") + 1)];
    if (!/^\d+$/.test(createdAt) || !id) throw new Error("bad cursor");
    return { createdAt: Number(createdAt), id };
  } catch {
    throw new ApiError("validation_failed", "cursor: not a cursor this API gave out", [{ path: "cursor", message: "invalid cursor" }]);
  }
}
