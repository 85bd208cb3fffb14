#!/usr/bin/env node
// `sdgate-gpu-node`: runs the TypeScript agent through tsx's loader, no build step.
import { register } from "tsx/esm/api";

register();
await import(new URL("./main.ts", import.meta.url).href);
