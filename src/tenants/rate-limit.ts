// requestsPerMinute: hono-rate-limiter counting each key's task submissions in a fixed
// one-minute window, in the key's SubmissionCounter (./submission-counter.ts). Answers carry
// RateLimit and RateLimit-Policy (draft-7); a refusal is 429 problem+json naming the limit, with
// Retry-After (the sd-webui surface says it in sd-webui's shape, with the same headers).
import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { type ClientRateLimitInfo, rateLimiter, type Store } from "hono-rate-limiter";
import type { AppEnv } from "../app-env";
import { ApiError } from "../errors";

const RATE_WINDOW_MS = 60_000;

function counterStore(namespace: Env["SUBMISSION_COUNTER"]): Store<AppEnv> {
  const counter = (key: string) => namespace.get(namespace.idFromName(key));
  const add = async (key: string, hits: number): Promise<ClientRateLimitInfo> => {
    const window = await counter(key).add(hits, RATE_WINDOW_MS);
    return { totalHits: window.hits, resetTime: new Date(window.resetAt) };
  };
  return {
    increment: (key) => add(key, 1),
    decrement: async (key) => {
      await add(key, -1);
    },
    resetKey: (key) => counter(key).reset(),
  };
}

function limiterFor(env: Env): MiddlewareHandler<AppEnv> {
  return rateLimiter<AppEnv>({
    windowMs: RATE_WINDOW_MS,
    limit: (c) => c.get("caller").limits.requestsPerMinute,
    keyGenerator: (c) => c.get("caller").owner,
    standardHeaders: "draft-7",
    store: counterStore(env.SUBMISSION_COUNTER),
    handler: (c) => {
      const limit = c.get("caller").limits.requestsPerMinute;
      throw new ApiError(
        "rate_limited",
        `This key may submit ${limit} tasks per minute (limit requestsPerMinute); try again after Retry-After seconds`,
        undefined,
        {
          limit: "requestsPerMinute",
        },
      );
    },
  });
}

/** One limiter per set of bindings: its store is bound to the namespace once. */
const limiters = new WeakMap<Env, MiddlewareHandler<AppEnv>>();

/** Counts a task submission against the caller's requestsPerMinute; goes after requireRole. */
export const submissionRateLimit = createMiddleware<AppEnv>(async (c, next) => {
  let limiter = limiters.get(c.env);
  if (!limiter) {
    limiter = limiterFor(c.env);
    limiters.set(c.env, limiter);
  }
  return limiter(c, async () => {
    // Hono keeps headers set before the handler only on a response it builds itself: reading
    // c.res makes one now, whose headers it copies onto a Response the handler returns as is
    // (the sd-webui surface's answers), so those carry RateLimit too.
    void c.res;
    await next();
  });
});
