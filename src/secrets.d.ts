// The Worker's secrets, which wrangler.toml does not name (so `wrangler types` cannot): set with
// `wrangler secret put` when deployed, read from dev.vars in local development.
declare namespace Cloudflare {
  interface Env {
    ADMIN_TOKEN?: string;
    SIGNING_SECRET?: string;
  }
}
