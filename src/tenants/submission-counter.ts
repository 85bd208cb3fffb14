// A key's submissions in the current one-minute window (requestsPerMinute), one Durable Object
// per key so the count holds across isolates. @hono-rate-limiter/cloudflare ships such an object,
// but its types pull in an older @cloudflare/workers-types that breaks this Worker's `Env`, and it
// awaits storage between its read and write; this one reads and writes synchronously.
import { DurableObject } from "cloudflare:workers";

interface Window {
  hits: number;
  /** Epoch ms the window ends and the count starts over. */
  resetAt: number;
}

export class SubmissionCounter extends DurableObject<Env> {
  /** Adds `hits` (negative to give one back) to the current window, starting a new one when it has ended. */
  async add(hits: number, windowMs: number): Promise<Window> {
    const now = Date.now();
    const stored = this.ctx.storage.kv.get<Window>("window");
    const current = stored && stored.resetAt > now ? stored : { hits: 0, resetAt: now + windowMs };
    const next = { hits: Math.max(0, current.hits + hits), resetAt: current.resetAt };
    this.ctx.storage.kv.put("window", next);
    return next;
  }

  async reset(): Promise<void> {
    this.ctx.storage.kv.delete("window");
  }
}
