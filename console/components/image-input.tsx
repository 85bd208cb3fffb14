// An image the playground sends by key: dropped or picked here (stored with POST /uploads), or a
// result of the caller's own set as the init image.
import { useState } from "preact/hooks";
import { type Api, errorText } from "../api";

export interface ImageRef {
  key: string;
  previewUrl: string;
}

export function ImageInput({ api, label, value, onChange }: { api: Api; label: string; value: ImageRef | null; onChange: (image: ImageRef | null) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);

  async function take(file: File | undefined) {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const stored = await api.call<{ key: string }>("POST", "/uploads", file, { "content-type": file.type || "application/octet-stream" });
      onChange({ key: stored.key, previewUrl: URL.createObjectURL(file) });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: a drop target for the mouse; the file input inside is the keyboard's way
    <div
      class={`drop ${dragging ? "dragging" : ""}`}
      data-testid={`drop-${label.toLowerCase().replaceAll(" ", "-")}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        void take(e.dataTransfer?.files[0]);
      }}
    >
      <span class="drop-label">{label}</span>
      {value ? <img class="drop-preview" src={value.previewUrl} alt={label} /> : <span class="muted">Drop an image here or pick one</span>}
      <input type="file" accept="image/*" aria-label={label} onChange={(e) => void take((e.currentTarget as HTMLInputElement).files?.[0])} />
      {value && (
        <button type="button" class="link" onClick={() => onChange(null)}>
          remove
        </button>
      )}
      {busy && <span class="muted">uploading…</span>}
      {error && <span class="error">{error}</span>}
    </div>
  );
}
