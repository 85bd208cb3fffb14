// Event ids of GET /tasks/{id}/events: `<seq>:<state>`. `seq` counts up across reconnects (a
// resumed stream continues after the client's Last-Event-ID), and `state` names the task's state
// the event reported, so a reconnect skips the state it has already seen and a client that saw
// the end is told there is nothing more (204, which also stops EventSource reconnecting).
import type { LiveStatus } from "../queue/types";

export interface EventCursor {
  seq: number;
  state: string;
}

export const END_STATE = "end";

/** What a live status looks like to a watcher: changes whenever there is something new to tell. */
export function liveState(live: LiveStatus): string {
  if (live.state === "waiting") return `waiting/${live.attempts}/${live.queuePosition}`;
  return `running/${live.attempts}/${live.progress?.updatedAt ?? 0}/${live.cancelRequested ? 1 : 0}`;
}

export function formatEventId(cursor: EventCursor): string {
  return `${cursor.seq}:${cursor.state}`;
}

/** A Last-Event-ID this API gave out, or a fresh start for anything else. */
export function parseEventId(header: string | undefined): EventCursor {
  const match = /^(\d{1,15}):(.+)$/.exec(header ?? "");
  return match ? { seq: Number(match[1]), state: match[2]! } : { seq: 0, state: "" };
}
