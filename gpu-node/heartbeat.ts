// The heartbeat, on its own timer beside the work loop: tells the Worker what the node has
// (loaded checkpoint, cached files, GPU), what it is doing, and — once after each sd-webui
// start — sd-webui's catalog. A 404 means the Worker forgot the node (re-register), a 409
// node_replaced that another agent process registered under its id; the answer says when to beat
// next (longer as the fleet grows) and may ask for an sd-webui restart, for the node to drain and leave (the fleet scales in), or name checkpoint
// files to fetch in the background (prefetch).
import type { Heartbeat as HeartbeatBody, ModelFile, WebuiCatalog } from "../src/protocol/node.ts";
import { type GatewayClient, isGatewayStatus, isNodeReplaced } from "./gateway-client.ts";
import { errorMessage, type Logger } from "./logger.ts";

export interface HeartbeatOptions {
  gateway: GatewayClient;
  nodeId: string;
  logger: Logger;
  /** The node's state now (without the catalog). */
  snapshot: () => Omit<HeartbeatBody, "catalog">;
  onUnknownNode: () => void;
  onReplaced: () => void;
  onRestartRequested: () => void;
  /** The fleet scales in and chose this node. */
  onDrainRequested: () => void;
  /** Checkpoint files to fetch in the background. */
  onPrefetchRequested: (files: ModelFile[]) => void;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private intervalMs = 10_000;
  private running = false;
  private inFlight: Promise<void> | null = null;
  private pendingCatalog: WebuiCatalog | null = null;
  private failing = false;
  /** A beat was asked for while one was in flight. */
  private beatAgain = false;

  constructor(private readonly options: HeartbeatOptions) {}

  start(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.running = true;
    this.schedule(0);
  }

  setInterval(intervalMs: number): void {
    this.intervalMs = intervalMs;
  }

  /** Sent with the next heartbeat (and again until one is accepted). */
  sendCatalog(catalog: WebuiCatalog): void {
    this.pendingCatalog = catalog;
  }

  /** Beat now instead of waiting for the timer (status changed). */
  beatNow(): void {
    if (this.running) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.inFlight) {
        this.beatAgain = true;
        return;
      }
      this.inFlight = this.beat().finally(() => {
        this.inFlight = null;
        const again = this.beatAgain;
        this.beatAgain = false;
        if (this.running && !this.timer) this.schedule(again ? 0 : this.intervalMs);
      });
    }, delayMs);
  }

  private async beat(): Promise<void> {
    const catalog = this.pendingCatalog;
    const body: HeartbeatBody = { ...this.options.snapshot(), ...(catalog ? { catalog } : {}) };
    try {
      const answer = await this.options.gateway.heartbeat(this.options.nodeId, body);
      if (catalog && this.pendingCatalog === catalog) this.pendingCatalog = null;
      if (this.failing) this.options.logger.info("heartbeat is getting through again");
      this.failing = false;
      if (answer.heartbeatIntervalMs !== undefined) this.intervalMs = answer.heartbeatIntervalMs;
      if (answer.restartWebui) this.options.onRestartRequested();
      if (answer.drain) this.options.onDrainRequested();
      if (answer.prefetch.length > 0) this.options.onPrefetchRequested(answer.prefetch);
    } catch (error) {
      if (isGatewayStatus(error, 404)) {
        this.options.onUnknownNode();
        return;
      }
      if (isNodeReplaced(error)) {
        this.options.onReplaced();
        return;
      }
      if (!this.failing) this.options.logger.warn(`heartbeat failed: ${errorMessage(error)}`);
      this.failing = true;
    }
  }
}
