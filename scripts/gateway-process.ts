// The Worker in a process of its own, started by startGateway (local-stack.ts). It reports its
// URL over IPC once listening, and stops on SIGTERM or SIGINT, or when its parent goes away.
import { serveWorker, type GatewayOptions } from "./local-stack.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as GatewayOptions & { persistDir: string };
const worker = await serveWorker(options);
process.send?.({ url: worker.url });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker.dispose();
  process.exit(0);
}
// wrangler and Miniflare, once imported, answer SIGTERM and SIGINT with an immediate exit, which
// would leave the bundle's temporary folder behind: a stop here disposes of everything first.
process.removeAllListeners("SIGTERM");
process.removeAllListeners("SIGINT");
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.on("disconnect", () => void stop());
