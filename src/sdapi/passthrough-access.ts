// Which sd-webui routes a tenant (user key) may run on a node through the passthrough: generation
// and read-only work. Everything else — node-level routes (cmd-flags, memory, unload/reload of the
// checkpoint, refresh-*, train/*, create/*, server-*, extensions, …) and any route not listed here,
// including unknown and extension routes — is for admin keys only: deny by default, so a route a
// new sd-webui or extension adds is refused until someone decides it is tenant work.
// Routes the Worker answers itself (options, progress, the lists, txt2img, …) never reach this.

type PassthroughMethod = "GET" | "POST" | "PUT" | "DELETE";

const TENANT_ROUTES: Readonly<Record<PassthroughMethod, ReadonlySet<string>>> = {
  GET: new Set([
    "/sdapi/v1/samplers",
    "/sdapi/v1/schedulers",
    "/sdapi/v1/upscalers",
    "/sdapi/v1/latent-upscale-modes",
    "/sdapi/v1/sd-models",
    "/sdapi/v1/sd-modules",
    "/sdapi/v1/sd-vae",
    "/sdapi/v1/hypernetworks",
    "/sdapi/v1/face-restorers",
    "/sdapi/v1/realesrgan-models",
    "/sdapi/v1/prompt-styles",
    "/sdapi/v1/embeddings",
    "/sdapi/v1/loras",
    "/sdapi/v1/scripts",
    "/sdapi/v1/script-info",
    "/controlnet/version",
    "/controlnet/model_list",
    "/controlnet/module_list",
    "/controlnet/control_types",
    "/controlnet/settings",
  ]),
  POST: new Set([
    "/sdapi/v1/txt2img",
    "/sdapi/v1/img2img",
    "/sdapi/v1/extra-single-image",
    "/sdapi/v1/extra-batch-images",
    "/sdapi/v1/png-info",
    "/sdapi/v1/interrogate",
    "/controlnet/detect",
  ]),
  PUT: new Set(),
  DELETE: new Set(),
};

/** May a tenant run `method path` on a node? `path` is the sd-webui path as forwarded, query included. */
export function tenantMayPassthrough(method: PassthroughMethod, path: string): boolean {
  const queryAt = path.indexOf("?");
  return TENANT_ROUTES[method].has(queryAt < 0 ? path : path.slice(0, queryAt));
}
