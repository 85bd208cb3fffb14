// A task as it runs and as it ended: live progress with the preview (from the events stream),
// then its pictures and parameters.
import type { ComponentChildren } from "preact";
import type { TaskProgress, TaskResult } from "../task-events";
import { ProgressBar } from "./ui";

export function previewSource(image: string): string {
  return image.startsWith("data:") ? image : `data:image/png;base64,${image}`;
}

export function LiveProgress({ progress }: { progress: TaskProgress }) {
  return (
    <div class="live" data-testid="live-progress">
      {progress.status === "waiting" ? (
        <p>Waiting in the queue{progress.queuePosition ? `: position ${progress.queuePosition}` : ""}</p>
      ) : (
        <ProgressBar fraction={progress.progress} label="Generating" />
      )}
      {progress.currentImage && <img class="preview" src={previewSource(progress.currentImage)} alt="preview" data-testid="preview" />}
    </div>
  );
}

/** The seed sd-webui used for the first image, from the result's info. */
export function seedOf(result: TaskResult): number | null {
  let info = result.info;
  if (typeof info === "string") {
    try {
      info = JSON.parse(info);
    } catch {
      return null;
    }
  }
  const fields = (info ?? {}) as { seed?: unknown; all_seeds?: unknown[] };
  const seed = fields.seed ?? fields.all_seeds?.[0];
  return typeof seed === "number" ? seed : null;
}

export function ResultView({ result, actions }: { result: TaskResult; actions?: (index: number) => ComponentChildren }) {
  const seed = seedOf(result);
  return (
    <div class="result" data-testid="result">
      <p>
        <b class={`status ${result.status}`}>{result.status}</b> · {result.checkpoint}
        {seed !== null ? ` · seed ${seed}` : ""}
        {result.message ? ` · ${result.message}` : ""}
      </p>
      <div class="images">
        {result.ossUrl.map((url, i) => (
          <figure key={url}>
            <img src={url} alt={`result ${i + 1}`} data-testid="result-image" />
            <figcaption>
              <a href={url} download={`${result.taskId}-${i}.png`}>
                download
              </a>
              {actions?.(i)}
            </figcaption>
          </figure>
        ))}
      </div>
      <details>
        <summary>Parameters</summary>
        <pre>{JSON.stringify(result.parameters, null, 2)}</pre>
      </details>
    </div>
  );
}
