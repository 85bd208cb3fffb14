// The queue's webhook deliveries. A task submitted with a webhook has it noted here at enqueue;
// when the task ends, in the same synchronous step that ends it, the note becomes a delivery
// due now. Deliveries are POSTed (src/tasks/webhooks.ts signs them) until the receiver answers
// 2xx, retried with growing delays (the queue's alarm wakes for the next one), and given up
// after the last with a log line. A queue that restarts finds its pending deliveries here.
import type { Config } from "../config";
import { logLine } from "../log";
import { signWebhook, type TaskEnded, taskEndedEvent, webhookId, webhookSecret } from "../tasks/webhooks";
import type { WebhookTarget } from "./types";

/** Waits after the 1st, 2nd, … failed attempt; after the last, the delivery is given up (8 attempts over ~1 h 15 min). */
export const WEBHOOK_RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000, 1_200_000, 2_400_000];
/** A receiver that has not answered by then counts as failed. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

interface Delivery extends Record<string, SqlStorageValue> {
  id: string;
  url: string;
  origin: string;
  owner: string;
  event: string;
  attempts: number;
  next_at: number;
}

export class WebhookOutbox {
  private delivering: Promise<void> | null = null;
  /** Asked for while a run was under way: run again after it (new deliveries may be due). */
  private again = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly config: () => Config,
    private readonly clock: () => number,
    /** Outgoing HTTP; tests may replace it. */
    private readonly send: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  /** The task has a webhook: noted at enqueue. */
  register(uid: string, target: WebhookTarget): void {
    this.sql.exec("INSERT OR REPLACE INTO webhooks (uid, url, origin, owner) VALUES (?, ?, ?, ?)", uid, target.url, target.origin, target.owner);
  }

  /** The task ended: its event is due now if it has a webhook. Call in the step that ends it. */
  ended(uid: string, event: TaskEnded): boolean {
    const target = this.sql.exec<{ url: string; origin: string; owner: string }>("SELECT url, origin, owner FROM webhooks WHERE uid = ?", uid).toArray()[0];
    if (!target) return false;
    this.sql.exec("DELETE FROM webhooks WHERE uid = ?", uid);
    this.sql.exec(
      "INSERT OR REPLACE INTO webhook_deliveries (id, url, origin, owner, event, next_at) VALUES (?, ?, ?, ?, ?, ?)",
      `task_${uid}`,
      target.url,
      target.origin,
      target.owner,
      JSON.stringify(event),
      this.clock(),
    );
    return true;
  }

  /** When the next delivery is due (epoch ms), or null when none is pending. */
  nextDueAt(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(next_at) AS at FROM webhook_deliveries").one().at;
  }

  /** Attempts every delivery that is due (once each); one run at a time. */
  deliverDue(): Promise<void> {
    if (this.delivering) {
      this.again = true;
      return this.delivering;
    }
    this.delivering = (async () => {
      do {
        this.again = false;
        await this.attemptDue();
      } while (this.again);
    })().finally(() => (this.delivering = null));
    return this.delivering;
  }

  private async attemptDue(): Promise<void> {
    const due = this.sql.exec<Delivery>("SELECT * FROM webhook_deliveries WHERE next_at <= ? ORDER BY next_at", this.clock()).toArray();
    await Promise.all(due.map((delivery) => this.attempt(delivery)));
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const config = this.config();
    const body = JSON.stringify(await taskEndedEvent(delivery.origin, config, JSON.parse(delivery.event) as TaskEnded));
    const timestamp = Math.floor(this.clock() / 1000);
    const id = await webhookId(config.signingSecret, delivery.id);
    const signature = await signWebhook(await webhookSecret(config.signingSecret, delivery.owner), id, timestamp, body);
    let failure: string;
    try {
      const res = await this.send(delivery.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "sdgate-webhooks",
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signature,
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) {
        this.sql.exec("DELETE FROM webhook_deliveries WHERE id = ?", delivery.id);
        return;
      }
      failure = `HTTP ${res.status}`;
    } catch (error) {
      failure = String(error).slice(0, 200);
    }
    const attempts = delivery.attempts + 1;
    const delay = WEBHOOK_RETRY_DELAYS_MS[attempts - 1];
    if (delay === undefined) {
      this.sql.exec("DELETE FROM webhook_deliveries WHERE id = ?", delivery.id);
      logLine("warn", `webhook ${delivery.id} to ${new URL(delivery.url).host} given up after ${attempts} attempts (last: ${failure})`);
      return;
    }
    this.sql.exec("UPDATE webhook_deliveries SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?", attempts, this.clock() + delay, failure, delivery.id);
  }
}
