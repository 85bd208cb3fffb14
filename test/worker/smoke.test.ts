import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("answers /docs", async () => {
  const res = await exports.default.fetch("http://sdgate.test/docs");
  expect(res.status).toBe(200);
  const res2 = await exports.default.fetch("http://sdgate.test/tasks", { headers: { authorization: "Bearer sdgate-dev-admin-token" } });
  expect(res2.status).toBe(200);
  console.log(await res2.text());
});
