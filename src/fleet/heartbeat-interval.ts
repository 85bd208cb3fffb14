// How often a node heartbeats: the configured interval while the fleet is small, longer as it
// grows, so that all nodes' heartbeats together stay within a fixed rate. One Durable Object
// (Fleet) hears every heartbeat; at 1,000 nodes and 5 s that would be 200 requests a second,
// most of them saying nothing new.

/** Heartbeats a second the whole fleet sends at most (once each node has heard its interval). */
export const FLEET_HEARTBEATS_PER_S = 20;

/** The interval to tell a node when `liveNodes` nodes are live: never below `configuredMs`, in whole seconds above it. */
export function heartbeatIntervalFor(liveNodes: number, configuredMs: number): number {
  const spreadMs = Math.ceil(liveNodes / FLEET_HEARTBEATS_PER_S) * 1000;
  return Math.max(configuredMs, spreadMs);
}
