// The queue's webhook deliveries, on a queue's own storage with a receiver and a clock the test
// controls: a delivery is due the moment its task ends, is retried on the published schedule
// while the receiver fails, and is given up (and logged) after the last attempt.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readConfig } from "../../src/config";
import type { CheckpointQueue } from "../../src/queue/checkpoint-queue";
import { WEBHOOK_RETRY_DELAYS_MS, WebhookOutbox } from "../../src/queue/webhook-outbox";
import { queueOf } from "./helpers";

const target = { url: "https://hooks.example/sd", origin: "https://sdgate.example", owner: "key_1" };
const ending = { status: "succeeded" as const, finishedAt: Date.UTC(2026, 10, 25), attempts: 1, imageKeys: ["images/key_1/t_1_0.png"] };

/** Runs `test` inside a fresh queue object with an outbox on its storage. */
function withOutbox(name: string, test: (outbox: WebhookOutbox, clock: { now: number }, sent: Request[], answer: { status: number }) => Promise<void>) {
  return runInDurableObject(queueOf(name), async (_queue: CheckpointQueue, state: DurableObjectState) => {
    const clock = { now: 1_000_000 };
    const sent: Request[] = [];
    const answer = { status: 200 };
    const send = async (input: RequestInfo | URL, init?: RequestInit) => {
      sent.push(new Request(input, init));
      return new Response(null, { status: answer.status });
    };
    await test(
      new WebhookOutbox(
        state.storage.sql,
        () => readConfig(env),
        () => clock.now,
        send as typeof fetch,
      ),
      clock,
      sent,
      answer,
    );
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("webhook outbox", () => {
  it("delivers a task's end once, signed, and only for tasks that have a webhook", async () => {
    await withOutbox("hooks-once", async (outbox, _clock, sent) => {
      expect(outbox.ended("t_none", { taskId: "none", ending })).toBe(false);
      outbox.register("t_1", target);
      expect(outbox.ended("t_1", { taskId: "mine", ending })).toBe(true);
      expect(outbox.ended("t_1", { taskId: "mine", ending })).toBe(false); // the note is used up
      await outbox.deliverDue();
      expect(sent).toHaveLength(1);
      expect(sent[0]!.url).toBe(target.url);
      // The id names no task uid.
      expect(sent[0]!.headers.get("webhook-id")).toMatch(/^msg_[A-Za-z0-9_-]{32}$/);
      expect(sent[0]!.headers.get("webhook-id")).not.toContain("t_1");
      expect(sent[0]!.headers.get("webhook-signature")).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(await sent[0]!.json()).toMatchObject({ type: "task.ended", taskId: "mine", status: "succeeded", images: ending.imageKeys });
      expect(outbox.nextDueAt()).toBeNull();
      await outbox.deliverDue();
      expect(sent).toHaveLength(1);
    });
  });

  it("retries a failing receiver on the schedule, then gives up and says so", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    await withOutbox("hooks-retry", async (outbox, clock, sent, answer) => {
      answer.status = 503;
      outbox.register("t_2", target);
      outbox.ended("t_2", { taskId: "flaky", ending });
      for (const delay of WEBHOOK_RETRY_DELAYS_MS) {
        const before = sent.length;
        await outbox.deliverDue();
        expect(sent.length).toBe(before + 1);
        expect(outbox.nextDueAt()).toBe(clock.now + delay);
        clock.now += delay - 1;
        await outbox.deliverDue(); // not due yet: nothing is sent
        expect(sent.length).toBe(before + 1);
        clock.now += 1;
      }
      await outbox.deliverDue(); // the last attempt
      expect(sent).toHaveLength(WEBHOOK_RETRY_DELAYS_MS.length + 1);
      // The same id on every retry.
      expect(new Set(sent.map((r) => r.headers.get("webhook-id"))).size).toBe(1);
      expect(outbox.nextDueAt()).toBeNull();
      expect(String(logged.mock.calls.at(-1)?.[0])).toContain(`given up after ${WEBHOOK_RETRY_DELAYS_MS.length + 1} attempts (last: HTTP 503)`);
    });
  });

  it("stops retrying once the receiver takes the event", async () => {
    await withOutbox("hooks-recover", async (outbox, clock, sent, answer) => {
      answer.status = 500;
      outbox.register("t_3", target);
      outbox.ended("t_3", { taskId: "recovers", ending });
      await outbox.deliverDue();
      answer.status = 204;
      clock.now += WEBHOOK_RETRY_DELAYS_MS[0]!;
      await outbox.deliverDue();
      expect(sent).toHaveLength(2);
      expect(outbox.nextDueAt()).toBeNull();
    });
  });
});
