// Try prompts and parameters: txt2img, img2img (init image, mask) and upscale, with the
// checkpoint, VAE, LoRA and sampler pickers filled from the registry and the nodes' catalogs.
import { useEffect, useState } from "preact/hooks";
import { type Api, errorText } from "../api";
import { ImageInput, type ImageRef } from "./image-input";
import { LiveProgress, ResultView, seedOf } from "./task-view";
import { ErrorNote, NumberField, Select } from "./ui";
import { useTaskEvents } from "./use-task-events";

type Mode = "txt2img" | "img2img" | "upscale";
const SUBMIT_PATHS: Record<Mode, string> = { txt2img: "/txt2img", img2img: "/img2img", upscale: "/extra_images" };

interface Choices {
  checkpoints: string[];
  vaes: string[];
  loras: string[];
  samplers: string[];
  upscalers: string[];
}

const uniqueNames = (...lists: string[][]) => [...new Set(lists.flat())].sort();

async function loadChoices(api: Api): Promise<Choices> {
  type Named = { name: string; sha256?: string | null };
  const [checkpoints, vaes, loras, catalogVaes, catalogLoras, samplers, upscalers] = await Promise.all([
    api.get<Named[]>("/models?type=checkpoint"),
    api.get<Named[]>("/models?type=vae"),
    api.get<Named[]>("/models?type=lora"),
    api.get<Array<{ model_name: string }>>("/sdapi/v1/sd-vae"),
    api.get<Array<{ name: string }>>("/sdapi/v1/loras"),
    api.get<Array<{ name: string }>>("/sdapi/v1/samplers"),
    api.get<Array<{ name: string }>>("/sdapi/v1/upscalers"),
  ]);
  return {
    checkpoints: checkpoints.filter((m) => m.sha256).map((m) => m.name),
    vaes: uniqueNames(
      vaes.map((m) => m.name),
      catalogVaes.map((v) => v.model_name),
    ),
    loras: uniqueNames(
      loras.map((m) => m.name),
      catalogLoras.map((l) => l.name),
    ),
    samplers: samplers.map((s) => s.name),
    upscalers: upscalers.map((u) => u.name),
  };
}

interface Form {
  checkpoint: string;
  vae: string;
  prompt: string;
  negativePrompt: string;
  sampler: string;
  seed: number;
  steps: number;
  cfgScale: number;
  width: number;
  height: number;
  batchSize: number;
  denoisingStrength: number;
  upscaler: string;
  upscaleBy: number;
}

const INITIAL_FORM: Form = {
  checkpoint: "",
  vae: "",
  prompt: "a lighthouse at dusk, oil painting",
  negativePrompt: "",
  sampler: "",
  seed: -1,
  steps: 20,
  cfgScale: 7,
  width: 512,
  height: 512,
  batchSize: 1,
  denoisingStrength: 0.6,
  upscaler: "",
  upscaleBy: 2,
};

function requestBody(mode: Mode, form: Form, init: ImageRef | null, mask: ImageRef | null): Record<string, unknown> {
  const checkpoint = { stable_diffusion_model: form.checkpoint };
  if (mode === "upscale") return { ...checkpoint, image: init?.key, upscaling_resize: form.upscaleBy, ...(form.upscaler ? { upscaler_1: form.upscaler } : {}) };
  const generation = {
    ...checkpoint,
    ...(form.vae ? { sd_vae: form.vae } : {}),
    prompt: form.prompt,
    negative_prompt: form.negativePrompt,
    ...(form.sampler ? { sampler_name: form.sampler } : {}),
    seed: form.seed,
    steps: form.steps,
    cfg_scale: form.cfgScale,
    width: form.width,
    height: form.height,
    batch_size: form.batchSize,
  };
  if (mode === "txt2img") return generation;
  return { ...generation, init_images: init ? [init.key] : [], ...(mask ? { mask: mask.key } : {}), denoising_strength: form.denoisingStrength };
}

export function Playground({ api }: { api: Api }) {
  const [choices, setChoices] = useState<Choices | null>(null);
  const [mode, setMode] = useState<Mode>("txt2img");
  const [form, setForm] = useState<Form>(INITIAL_FORM);
  const [init, setInit] = useState<ImageRef | null>(null);
  const [mask, setMask] = useState<ImageRef | null>(null);
  const [lora, setLora] = useState("");
  const [taskId, setTaskId] = useState<string | null>(null);
  const { progress, result, error: streamError } = useTaskEvents(api, taskId);
  const [error, setError] = useState<string | null>(null);
  const set =
    <K extends keyof Form>(field: K) =>
    (value: Form[K]) =>
      setForm((f) => ({ ...f, [field]: value }));

  useEffect(() => {
    loadChoices(api)
      .then((loaded) => {
        setChoices(loaded);
        setForm((f) => ({
          ...f,
          checkpoint: f.checkpoint || loaded.checkpoints[0] || "",
          upscaler: f.upscaler || loaded.upscalers.find((u) => u !== "None") || "",
        }));
      })
      .catch((e) => setError(errorText(e)));
  }, [api]);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      const submitted = await api.call<{ taskId: string }>("POST", SUBMIT_PATHS[mode], requestBody(mode, form, init, mask), { "request-type": "async" });
      setTaskId(submitted.taskId);
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function cancel() {
    if (!taskId) return;
    try {
      await api.call("POST", `/tasks/${encodeURIComponent(taskId)}/cancellation`);
    } catch (err) {
      setError(errorText(err));
    }
  }

  const running = taskId !== null && result === null && streamError === null;
  const resultSeed = result ? seedOf(result) : null;
  return (
    <div class="playground">
      <form class="panel controls" onSubmit={submit}>
        <div class="tabs" role="tablist">
          {(["txt2img", "img2img", "upscale"] as const).map((m) => (
            <button key={m} type="button" role="tab" aria-selected={mode === m} class={mode === m ? "active" : ""} onClick={() => setMode(m)}>
              {m}
            </button>
          ))}
        </div>
        <Select label="Checkpoint" value={form.checkpoint} options={choices?.checkpoints ?? []} onChange={set("checkpoint")} />
        {mode !== "upscale" && (
          <>
            <Select label="VAE" value={form.vae} options={choices?.vaes ?? []} onChange={set("vae")} empty="Automatic" />
            <label>
              Prompt
              <textarea rows={3} value={form.prompt} onInput={(e) => set("prompt")((e.currentTarget as HTMLTextAreaElement).value)} />
            </label>
            <div class="row">
              <Select label="LoRA" value={lora} options={choices?.loras ?? []} onChange={setLora} empty="—" />
              <button type="button" disabled={!lora} onClick={() => set("prompt")(`${form.prompt} <lora:${lora}:0.8>`)}>
                Add to prompt
              </button>
            </div>
            <label>
              Negative prompt
              <textarea rows={2} value={form.negativePrompt} onInput={(e) => set("negativePrompt")((e.currentTarget as HTMLTextAreaElement).value)} />
            </label>
            <div class="grid">
              <Select label="Sampler" value={form.sampler} options={choices?.samplers ?? []} onChange={set("sampler")} empty="Default" />
              <NumberField label="Seed (-1: random)" value={form.seed} onInput={set("seed")} min={-1} />
              <NumberField label="Steps" value={form.steps} onInput={set("steps")} min={1} max={150} />
              <NumberField label="CFG scale" value={form.cfgScale} onInput={set("cfgScale")} min={1} max={30} step={0.5} />
              <NumberField label="Width" value={form.width} onInput={set("width")} min={64} max={2048} step={64} />
              <NumberField label="Height" value={form.height} onInput={set("height")} min={64} max={2048} step={64} />
              <NumberField label="Batch size" value={form.batchSize} onInput={set("batchSize")} min={1} max={8} />
              {mode === "img2img" && (
                <NumberField label="Denoising" value={form.denoisingStrength} onInput={set("denoisingStrength")} min={0} max={1} step={0.05} />
              )}
            </div>
          </>
        )}
        {mode !== "txt2img" && <ImageInput api={api} label={mode === "upscale" ? "Image" : "Init image"} value={init} onChange={setInit} />}
        {mode === "img2img" && <ImageInput api={api} label="Mask" value={mask} onChange={setMask} />}
        {mode === "upscale" && (
          <div class="grid">
            <Select label="Upscaler" value={form.upscaler} options={choices?.upscalers ?? []} onChange={set("upscaler")} />
            <NumberField label="Scale" value={form.upscaleBy} onInput={set("upscaleBy")} min={1} max={8} step={0.5} />
          </div>
        )}
        <div class="row">
          <button type="submit" class="primary" disabled={running || !form.checkpoint}>
            Generate
          </button>
          {running && (
            <button type="button" onClick={cancel}>
              Cancel
            </button>
          )}
        </div>
        <ErrorNote error={error ?? streamError} />
      </form>
      <section class="panel output">
        {!taskId && <p class="muted">Your picture appears here, with live progress while it is made.</p>}
        {taskId && (
          <p class="muted">
            Task <a href={`#/tasks/${encodeURIComponent(taskId)}`}>{taskId}</a>
          </p>
        )}
        {progress && <LiveProgress progress={progress} />}
        {result && (
          <ResultView
            result={result}
            actions={(i) => (
              <>
                {resultSeed !== null && (
                  <button type="button" class="link" onClick={() => setForm((f) => ({ ...f, seed: resultSeed }))}>
                    reuse seed
                  </button>
                )}
                <button
                  type="button"
                  class="link"
                  onClick={() => {
                    setInit({ key: result.images[i]!, previewUrl: result.ossUrl[i]! });
                    setMode("img2img");
                  }}
                >
                  use as init image
                </button>
              </>
            )}
          />
        )}
      </section>
    </div>
  );
}
