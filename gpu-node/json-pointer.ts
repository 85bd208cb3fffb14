// RFC 6901 JSON pointers: the Worker names where each externalised input image goes in a task's
// payload ("/init_images/0", "/alwayson_scripts/controlnet/args/0/image"); the agent writes the
// image's base64 there before calling sd-webui.

export function parseJsonPointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`invalid JSON pointer "${pointer}": must start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return typeof value === "object" && value !== null;
}

/**
 * Sets `value` at `pointer` inside `document` (mutating it). Missing intermediate containers are
 * created (an array when the next token is an index, else an object); "-" appends to an array.
 */
export function setJsonPointer(document: Record<string, unknown>, pointer: string, value: unknown): void {
  const tokens = parseJsonPointer(pointer);
  if (tokens.length === 0) throw new Error("cannot replace the whole payload through a JSON pointer");
  let node: Container = document;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const last = i === tokens.length - 1;
    if (Array.isArray(node)) {
      const index = token === "-" ? node.length : arrayIndex(token, pointer);
      if (index > node.length) throw new Error(`JSON pointer "${pointer}": index ${index} is past the end of the array`);
      if (last) {
        node[index] = value;
        return;
      }
      let next = node[index];
      if (!isContainer(next)) {
        next = isIndexToken(tokens[i + 1]!) ? [] : {};
        node[index] = next;
      }
      node = next as Container;
    } else {
      if (token === "__proto__") throw new Error(`JSON pointer "${pointer}": forbidden token`);
      if (last) {
        node[token] = value;
        return;
      }
      let next = node[token];
      if (!isContainer(next)) {
        next = isIndexToken(tokens[i + 1]!) ? [] : {};
        node[token] = next;
      }
      node = next as Container;
    }
  }
}

export function getJsonPointer(document: unknown, pointer: string): unknown {
  let node: unknown = document;
  for (const token of parseJsonPointer(pointer)) {
    if (Array.isArray(node)) node = node[arrayIndex(token, pointer)];
    else if (isContainer(node)) node = (node as Record<string, unknown>)[token];
    else return undefined;
  }
  return node;
}

function isIndexToken(token: string): boolean {
  return token === "-" || /^(0|[1-9][0-9]*)$/.test(token);
}

function arrayIndex(token: string, pointer: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`JSON pointer "${pointer}": "${token}" is not an array index`);
  return Number(token);
}
