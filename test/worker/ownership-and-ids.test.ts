// Client-chosen ids, Idempotency-Key, listing, and that no key reaches another key's tasks or images.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, claim, createKey, createModel, finishTask, json, registerNode, SIGNING_SECRET, submit } from "./helpers";

interface Submitted {
  taskId: string;
  status: string;
  ossUrl: string[];
}

describe("task ids", () => {
  it("uses a client-chosen taskId, unique per owner (409 on a clash, free for another key)", async () => {
    await createModel("ids-a");
    const alice = await createKey("user");
    const bob = await createKey("user");
    const mine = await json<Submitted>(await submit(alice, { stable_diffusion_model: "ids-a" }, { taskid: "render-42" }), 202);
    expect(mine.taskId).toBe("render-42");
    const clash = await json<{ code: string }>(await submit(alice, { stable_diffusion_model: "ids-a" }, { taskid: "render-42" }), 409);
    expect(clash.code).toBe("task_id_conflict");
    const theirs = await json<Submitted>(await submit(bob, { stable_diffusion_model: "ids-a" }, { taskid: "render-42" }), 202);
    expect(theirs.taskId).toBe("render-42");
    const bad = await json<{ code: string; errors: Array<{ path: string }> }>(
      await submit(alice, { stable_diffusion_model: "ids-a" }, { taskid: "no spaces/allowed" }),
      422,
    );
    expect(bad.errors[0]!.path).toBe("taskid");
  });

  it("returns the same task for a retried Idempotency-Key, and refuses it for a different request", async () => {
    await createModel("ids-idem");
    const user = await createKey("user");
    const first = await json<Submitted>(await submit(user, { stable_diffusion_model: "ids-idem", prompt: "a" }, { "idempotency-key": "k1" }), 202);
    const retry = await json<Submitted>(await submit(user, { stable_diffusion_model: "ids-idem", prompt: "a" }, { "idempotency-key": "k1" }), 202);
    expect(retry.taskId).toBe(first.taskId);
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM tasks WHERE idempotency_key = 'k1'").first<{ n: number }>();
    expect(count!.n).toBe(1);
    const other = await json<{ code: string }>(await submit(user, { stable_diffusion_model: "ids-idem", prompt: "b" }, { "idempotency-key": "k1" }), 409);
    expect(other.code).toBe("idempotency_conflict");
  });

  it("refuses the loser of a race for a new Idempotency-Key when its request differs, and answers the same task when it is identical", async () => {
    await createModel("ids-race");
    const user = await createKey("user");
    const races = Array.from({ length: 4 }, (_, i) => `race-${i}`);
    const different = await Promise.all(
      races.map((key) => Promise.all(["a", "b"].map((prompt) => submit(user, { stable_diffusion_model: "ids-race", prompt }, { "idempotency-key": key })))),
    );
    for (const pair of different) {
      expect(pair.map((res) => res.status).sort()).toEqual([202, 409]);
      const refused = await json<{ code: string }>(pair.find((res) => res.status === 409)!);
      expect(refused.code).toBe("idempotency_conflict");
    }
    const identical = await Promise.all(
      ["same-0", "same-0"].map((key) => submit(user, { stable_diffusion_model: "ids-race", prompt: "c" }, { "idempotency-key": key })),
    );
    const [one, two] = await Promise.all(identical.map((res) => json<Submitted>(res, 202)));
    expect(two!.taskId).toBe(one!.taskId);
  });

  it("lists the caller's tasks newest first, page by page", async () => {
    await createModel("ids-list");
    const user = await createKey("user");
    const other = await createKey("user");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await json<Submitted>(await submit(user, { stable_diffusion_model: "ids-list" }, { taskid: `list-${i}` }), 202)).taskId);
    await submit(other, { stable_diffusion_model: "ids-list" }, { taskid: "not-yours" });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { tasks: Array<{ taskId: string }>; nextCursor: string | null } = await json(
        await call(`/tasks?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: user }),
        200,
      );
      expect(page.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...page.tasks.map((t) => t.taskId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const waiting = await json<{ tasks: unknown[] }>(await call("/tasks?status=succeeded", { token: user }), 200);
    expect(waiting.tasks).toEqual([]);
    expect((await call("/tasks?cursor=garbage!", { token: user })).status).toBe(422);
  });
});

describe("isolation between keys", () => {
  it("hides a task from every other key, by id, listing, progress, cancel and image key", async () => {
    await createModel("iso-a");
    const alice = await createKey("user");
    const mallory = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "iso-node", "iso-a");
    const { taskId } = await json<Submitted>(await submit(alice, { stable_diffusion_model: "iso-a" }), 202);
    await finishTask(node, (await claim(node, "iso-node"))!);
    for (const path of [`/tasks/${taskId}/result`, `/tasks/${taskId}/progress`]) {
      const res = await json<{ code: string }>(await call(path, { token: mallory }), 404);
      expect(res.code).toBe("task_not_found");
    }
    expect((await call(`/tasks/${taskId}/cancellation`, { token: mallory, method: "POST" })).status).toBe(404);
    expect((await json<{ tasks: unknown[] }>(await call("/tasks", { token: mallory }), 200)).tasks).toEqual([]);
    const result = await json<{ images: string[]; ossUrl: string[] }>(await call(`/tasks/${taskId}/result`, { token: alice }), 200);
    const unsigned = await call(`/${result.images[0]}`, { token: mallory });
    expect(unsigned.status).toBe(403);
    const signed = new URL(result.ossUrl[0]!);
    const otherKey = signed.pathname.replace(/images\/[^/]+\//, "images/someone-else/");
    expect((await call(`${otherKey}${signed.search}`)).status).toBe(403);
  });
});

describe("webhook secrets", () => {
  it("gives each key its own, always the same, and none to node keys", async () => {
    const [a, b, node] = [await createKey("user"), await createKey("user"), await createKey("node")];
    const secretOf = async (token: string) => (await json<{ secret: string }>(await call("/webhooks/secret", { token }), 200)).secret;
    const first = await secretOf(a);
    expect(first).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(await secretOf(a)).toBe(first);
    expect(await secretOf(b)).not.toBe(first);
    expect((await json<{ code: string }>(await call("/webhooks/secret", { token: node }), 403)).code).toBe("forbidden");
  });
});

describe("signed image URLs", () => {
  it("serve the image when valid, refuse a tampered one, and expire", async () => {
    await createModel("sig-a");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "sig-node", "sig-a");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "sig-a" }), 202);
    await finishTask(node, (await claim(node, "sig-node"))!);
    const { ossUrl } = await json<{ ossUrl: string[] }>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    const url = new URL(ossUrl[0]!);
    const exp = Number(url.searchParams.get("exp"));
    expect(exp * 1000 - Date.now()).toBeGreaterThan(3500 * 1000);
    expect(exp * 1000 - Date.now()).toBeLessThanOrEqual(3600 * 1000);
    expect((await call(url.pathname + url.search)).status).toBe(200);

    const tamperedSig = new URL(url);
    tamperedSig.searchParams.set("sig", `${url.searchParams.get("sig")!.slice(0, -2)}AA`);
    expect((await json<{ code: string }>(await call(tamperedSig.pathname + tamperedSig.search), 403)).code).toBe("invalid_signature");
    const longer = new URL(url);
    longer.searchParams.set("exp", String(exp + 86_400));
    expect((await call(longer.pathname + longer.search)).status).toBe(403);

    const { signImageUrl } = await import("../../src/storage/signed-url");
    const WEEK_SECONDS = 7 * 86_400;
    const policy = { signingSecret: SIGNING_SECRET, signedUrlTtlSeconds: 60, maxSignedUrlTtlSeconds: WEEK_SECONDS };
    const expired = new URL(await signImageUrl(url.origin, url.pathname.slice(1), policy, Date.now() - 120_000));
    expect((await json<{ code: string }>(await call(expired.pathname + expired.search), 410)).code).toBe("url_expired");

    // No link outlives the ceiling (7 days by default), even one signed with the real secret.
    const monthLong = { ...policy, signedUrlTtlSeconds: 30 * 86_400, maxSignedUrlTtlSeconds: 30 * 86_400 };
    const beyond = new URL(await signImageUrl(url.origin, url.pathname.slice(1), monthLong));
    const refused = await json<{ code: string; detail: string }>(await call(beyond.pathname + beyond.search), 403);
    expect(refused).toMatchObject({ code: "invalid_signature", detail: expect.stringContaining("MAX_SIGNED_URL_TTL_SECONDS") });
    const capped = new URL(await signImageUrl(url.origin, url.pathname.slice(1), { ...monthLong, maxSignedUrlTtlSeconds: WEEK_SECONDS }));
    expect(Number(capped.searchParams.get("exp")) * 1000 - Date.now()).toBeLessThanOrEqual(WEEK_SECONDS * 1000);
    expect((await call(capped.pathname + capped.search)).status).toBe(200);

    const fresh = await json<{ ossUrl: string[] }>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(fresh.ossUrl[0]).toMatch(/sig=/);
  });
});
