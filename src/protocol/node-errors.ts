// The error codes of the node protocol (src/protocol/node.ts) that an agent acts on: the `code`
// of the Worker's problem+json answers. The agent imports this file directly.

/** 409: the lease is no longer the task's current one; the call changed nothing. */
export const STALE_LEASE = "stale_lease";
/** 409: another agent process registered under this node id after the caller. */
export const NODE_REPLACED = "node_replaced";
/** 404: the node id is not registered (or was lost): register again. */
export const NODE_UNKNOWN = "node_unknown";
/** 409: the node id is bound to another node key (the one that first registered it); an admin can release it. */
export const NODE_ID_TAKEN = "node_id_taken";
