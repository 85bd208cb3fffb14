// Hono's typing for this app: the Worker's bindings and what middleware puts on the context.

import type { Config } from "./config";
import type { Role } from "./db/schema";
import type { KeyLimits } from "./tenants/limits";

export interface Caller {
  /** The API key's id ("admin" for the ADMIN_TOKEN). */
  keyId: string;
  role: Role;
  /** Whose tasks, uploads and images these are: the key id. */
  owner: string;
  /** The key's limits: configured defaults under the admin's overrides. */
  limits: KeyLimits;
}

export interface AppEnv {
  Bindings: Env;
  Variables: { requestId: string; config: Config; caller: Caller };
}
