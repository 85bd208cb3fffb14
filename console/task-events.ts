// Follows GET /tasks/{id}/events. EventSource cannot send an Authorization header, so the stream
// is read with fetch; a dropped connection is resumed with Last-Event-ID until the `end` event.

export interface TaskProgress {
  status: string;
  progress: number;
  etaRelative: number;
  currentImage: string | null;
  queuePosition?: number;
}

export interface TaskResult {
  taskId: string;
  status: string;
  images: string[];
  ossUrl: string[];
  parameters: Record<string, unknown>;
  info: unknown;
  message?: string;
  checkpoint: string;
  createdAt: string;
  finishedAt: string | null;
}

export type TaskEvent = { event: "queued" | "progress"; data: TaskProgress } | { event: "end"; data: TaskResult };

const RECONNECT_MS = 1000;

/** Splits an event-stream into events; returns what is left of an unfinished one. */
function parseEvents(buffer: string, onEvent: (id: string, event: string, data: string) => void): string {
  const blocks = buffer.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let id = "";
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const field = line.slice(0, colon);
      const value = line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length > 0) onEvent(id, event, data.join("\n"));
  }
  return rest;
}

/** Calls onEvent for each event until the task ends; the returned function stops following. */
export function followTask(key: string, taskId: string, onEvent: (event: TaskEvent) => void, onError: (message: string) => void): () => void {
  const abort = new AbortController();
  let lastEventId = "";
  let ended = false;

  async function connect(): Promise<void> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept: "text/event-stream" };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const res = await fetch(`/tasks/${encodeURIComponent(taskId)}/events`, { headers, signal: abort.signal });
    if (res.status === 204) {
      ended = true;
      return;
    }
    if (!res.ok || !res.body) {
      // Not a dropped connection (unknown task, revoked key): reconnecting would not help.
      ended = true;
      throw new Error(`events: HTTP ${res.status}`);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = parseEvents(buffer + value, (id, event, data) => {
        lastEventId = id || lastEventId;
        if (event === "end") ended = true;
        onEvent({ event, data: JSON.parse(data) } as TaskEvent);
      });
    }
  }

  void (async () => {
    while (!ended && !abort.signal.aborted) {
      try {
        await connect();
      } catch (error) {
        if (abort.signal.aborted) return;
        onError(error instanceof Error ? error.message : String(error));
      }
      if (!ended) await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  })();
  return () => abort.abort();
}
