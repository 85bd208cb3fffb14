// Where webhooks may point (src/tasks/webhook-url.ts): public hosts only, loopback too in local development.
import { describe, expect, it } from "vitest";
import { webhookUrlRefusal } from "../../../src/tasks/webhook-url";

const REFUSED_EVERYWHERE = [
  "http://10.1.2.3/hook",
  "http://172.16.0.1/",
  "http://172.31.255.255/",
  "https://192.168.1.10:8443/x",
  "http://100.64.0.1/",
  "http://169.254.169.254/latest/meta-data/",
  "http://169.254.169.254./",
  "http://metadata.google.internal/computeMetadata/v1/",
  "http://METADATA.google.internal./",
  "http://0.0.0.0/",
  "http://0/",
  "http://224.0.0.1/",
  "http://[fd00::1]/",
  "http://[fc00::1]/",
  "http://[fe80::1]/",
  "http://[::]/",
  "http://[::ffff:10.0.0.1]/",
  "http://[::ffff:169.254.169.254]/",
  "http://[64:ff9b::10.0.0.1]/",
  "http://0xa9.0xfe.0xa9.0xfe/",
  "http://2852039166/",
];

const LOOPBACK = [
  "http://127.0.0.1:8788/hook",
  "http://127.1/",
  "http://2130706433/",
  "http://0x7f000001/",
  "http://0177.0.0.1/",
  "http://localhost/",
  "http://LOCALHOST./",
  "http://api.localhost/",
  "http://[::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:7f00:1]/",
];

const PUBLIC = ["https://example.com/hooks/sd", "http://203.0.113.7:8080/", "https://[2001:db8::1]/", "http://172.32.0.1/", "https://8.8.8.8/"];

describe("webhook URLs", () => {
  it.each(REFUSED_EVERYWHERE)("refuses %s, in local development too", (url) => {
    expect(webhookUrlRefusal(url, false)).toMatch(/private, link-local or metadata/);
    expect(webhookUrlRefusal(url, true)).not.toBeNull();
  });

  it.each(LOOPBACK)("refuses loopback %s outside local development only", (url) => {
    expect(webhookUrlRefusal(url, false)).toMatch(/loopback/);
    expect(webhookUrlRefusal(url, true)).toBeNull();
  });

  it.each(PUBLIC)("accepts %s", (url) => {
    expect(webhookUrlRefusal(url, false)).toBeNull();
  });

  it("refuses what is not an http(s) URL", () => {
    expect(webhookUrlRefusal("ftp://example.com/", false)).not.toBeNull();
    expect(webhookUrlRefusal("not a url", false)).not.toBeNull();
  });
});
