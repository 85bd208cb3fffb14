// CLI glue for the GPU node agent: `npm run gpu-node -- --gateway URL` or `sdgate-gpu-node`.
// The first SIGTERM/SIGINT drains (finish the current task, deregister); a second one stops now.
import { GpuNodeAgent } from "./agent.ts";
import { ConfigError, helpText, parseCli } from "./config.ts";
import { createLogger, errorMessage } from "./logger.ts";

/** Duplicate deliveries of one Ctrl-C (terminal + npm/tsx relays) arrive within this window. */
const DUPLICATE_SIGNAL_MS = 500;
/** A hard stop that has not finished by then exits anyway. */
const HARD_STOP_EXIT_MS = 15_000;

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(process.argv.slice(2));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n\nRun with --help for the options.\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.help) {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  const { config } = parsed;
  const secrets = [config.token, ...(config.webuiAuth ? [config.webuiAuth, config.webuiAuth.split(":").slice(1).join(":")] : [])];
  const logger = createLogger({ level: config.logLevel, secrets, scope: config.nodeId });
  const agent = new GpuNodeAgent(config, { logger });

  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (firstSignalAt === 0) {
      firstSignalAt = now;
      logger.info(`${signal}: finishing the current task, then leaving (send it again to stop now)`);
      void agent.stop({ drain: true });
      return;
    }
    if (now - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
    logger.warn(`${signal} again: interrupting sd-webui and stopping now`);
    void agent.stop({ drain: false });
    setTimeout(() => process.exit(130), HARD_STOP_EXIT_MS).unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    await agent.start();
  } catch (error) {
    logger.error(errorMessage(error));
    return 1;
  }
  await agent.closed;
  return agent.fatalError ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`gpu-node: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
