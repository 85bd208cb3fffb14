// The route table: sd-webui's core API (behind --api-auth when set), the built-in Lora
// extension's routes, the ControlNet extension's routes (with --controlnet) and the UI's progress
// routes (not with --nowebui); extension and UI routes are never behind auth.

import { loadEmbeddings } from "./addons.ts";
import { FACE_RESTORERS, LATENT_UPSCALE_MODES, listUpscalers, REALESRGAN_MODELS, SAMPLERS, SCHEDULERS, scriptInfo, scriptLists } from "./catalog.ts";
import { CheckpointRegistry } from "./checkpoints.ts";
import type { EmulatorContext } from "./context.ts";
import { controlnetDetect, controlnetModelList, controlnetModuleList, controlnetVersion } from "./controlnet.ts";
import { listEmbeddings, listLoras, listVaes } from "./extra-networks.ts";
import { extraBatchImages, extraSingleImage } from "./extras.ts";
import { img2img, txt2img } from "./generation.ts";
import { interrogate, pngInfo } from "./image-tools.ts";
import { setOptions } from "./options-api.ts";
import { internalProgressRequestSchema, parseBody, progressQuerySchema } from "./request-schemas.ts";
import { cmdFlags, memory } from "./system-info.ts";

export interface RouteRequest {
  query: URLSearchParams;
  /** The parsed JSON body (undefined when empty); throws FastAPI's 422 when it is not JSON. */
  body(): unknown;
}

export interface Route {
  method: "GET" | "POST";
  path: string;
  /** Covered by --api-auth (every core route; extension and UI routes are not). */
  auth: boolean;
  handle(ctx: EmulatorContext, request: RouteRequest): unknown;
  /** Whether this emulator serves the route at all (UI routes, extension routes); default always. */
  available?(ctx: EmulatorContext): boolean;
}

const core = (method: Route["method"], name: string, handle: Route["handle"]): Route => ({
  method,
  path: `/sdapi/v1/${name}`,
  auth: true,
  handle,
});
const open = (method: Route["method"], path: string, handle: Route["handle"]): Route => ({ method, path, auth: false, handle });
/** A route of the sd-webui-controlnet extension (scripts/api.py): only when it is installed (--controlnet). */
const extension = (method: Route["method"], path: string, handle: Route["handle"]): Route => ({
  ...open(method, path, handle),
  available: (ctx) => ctx.controlnet,
});
/**
 * A UI route (modules/progress.py setup_progress_api, modules/ui.py setup_ui_api): absent with
 * --nowebui, where webui.py api_only() mounts only the API and the extensions' app_started routes.
 */
const ui = (method: Route["method"], path: string, handle: Route["handle"]): Route => ({ ...open(method, path, handle), available: (ctx) => !ctx.apiOnly });

export const ROUTES: readonly Route[] = [
  core("POST", "txt2img", (ctx, req) => txt2img(ctx, req.body())),
  core("POST", "img2img", (ctx, req) => img2img(ctx, req.body())),
  core("POST", "extra-single-image", (ctx, req) => extraSingleImage(ctx, req.body())),
  core("POST", "extra-batch-images", (ctx, req) => extraBatchImages(ctx, req.body())),
  core("POST", "png-info", (ctx, req) => pngInfo(ctx, req.body())),
  core("POST", "interrogate", (ctx, req) => interrogate(ctx, req.body())),
  core("GET", "progress", (ctx, req) => {
    const query = parseBody(progressQuerySchema, Object.fromEntries(req.query), "query");
    return ctx.state.progress(query.skip_current_image);
  }),
  core("POST", "interrupt", (ctx) => {
    ctx.state.interrupt();
    return {};
  }),
  core("POST", "skip", (ctx) => {
    ctx.state.skip();
    return null;
  }),
  core("GET", "options", (ctx) => ctx.options.all()),
  core("POST", "options", (ctx, req) => setOptions(ctx, req.body())),
  core("GET", "cmd-flags", (ctx) => cmdFlags(ctx)),
  core("GET", "samplers", () => SAMPLERS),
  core("GET", "schedulers", () => SCHEDULERS),
  core("GET", "upscalers", (ctx) => listUpscalers(ctx.addons.upscaler.list())),
  core("GET", "latent-upscale-modes", () => LATENT_UPSCALE_MODES),
  core("GET", "sd-models", (ctx) => ctx.checkpoints.list().map(CheckpointRegistry.toSdModelItem)),
  core("GET", "sd-vae", (ctx) => listVaes(ctx.addons.vae)),
  core("GET", "hypernetworks", () => []),
  core("GET", "face-restorers", () => FACE_RESTORERS),
  core("GET", "realesrgan-models", () => REALESRGAN_MODELS),
  core("GET", "prompt-styles", () => []),
  core("GET", "embeddings", (ctx) => listEmbeddings(ctx.addons.embedding)),
  core("POST", "refresh-embeddings", async (ctx) => {
    await loadEmbeddings(ctx, true);
    return null;
  }),
  core("POST", "refresh-checkpoints", async (ctx) => {
    await ctx.lock.run(() => ctx.checkpoints.refresh());
    return null;
  }),
  core("POST", "refresh-vae", async (ctx) => {
    await ctx.addons.vae.refresh();
    return null;
  }),
  core("GET", "memory", (ctx) => memory(ctx)),
  core("POST", "unload-checkpoint", (ctx) => {
    ctx.model.onDevice = false;
    return {};
  }),
  core("POST", "reload-checkpoint", (ctx) => {
    ctx.model.onDevice = true;
    return {};
  }),
  core("GET", "scripts", (ctx) => scriptLists(ctx.controlnet)),
  core("GET", "script-info", (ctx) => scriptInfo(ctx.controlnet)),
  core("GET", "extensions", () => []),
  open("GET", "/sdapi/v1/loras", (ctx) => listLoras(ctx.addons.lora)),
  open("POST", "/sdapi/v1/refresh-loras", async (ctx) => {
    await ctx.addons.lora.refresh();
    return null;
  }),
  extension("GET", "/controlnet/version", () => controlnetVersion()),
  extension("GET", "/controlnet/model_list", (ctx, req) => controlnetModelList(ctx, req.query.get("update")?.toLowerCase() !== "false")),
  extension("GET", "/controlnet/module_list", () => controlnetModuleList()),
  extension("POST", "/controlnet/detect", (ctx, req) => controlnetDetect(ctx, req.body())),
  ui("POST", "/internal/progress", (ctx, req) => {
    const request = parseBody(internalProgressRequestSchema, req.body());
    return ctx.state.taskProgress(request.id_task, request.id_live_preview, request.live_preview);
  }),
  ui("GET", "/internal/pending-tasks", (ctx) => ctx.state.pendingTasks()),
  ui("GET", "/internal/ping", () => ({})),
];
