// Admin: models (upload with progress, multipart for large files, delete), pools, nodes, keys,
// and — on servers that have them — usage and the autoscaler.
import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError, errorText, isMissingRoute } from "../api";
import { SINGLE_REQUEST_MAX_BYTES, uploadModelFile } from "../model-upload";
import { AnswerView, ago, DataTable, ErrorNote, formatBytes, Note, ProgressBar, Select, TableHead, TextField } from "./ui";

export const ADMIN_TABS = ["models", "pools", "nodes", "keys", "usage", "autoscaler"] as const;
export type AdminTab = (typeof ADMIN_TABS)[number];
const MODEL_TYPES = ["checkpoint", "vae", "lora", "controlnet", "embedding", "upscaler"];
const ROLES = ["user", "admin", "node"];

/** Loads a route's answer; `reload` fetches it again. `missing`: this server has no such route. */
function useLoaded<T>(api: Api, path: string, optional = false) {
  const [data, setData] = useState<T | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    (optional ? api.getIfServed<T>(path) : api.get<T>(path)).then(
      (answer) => {
        setMissing(answer === null);
        setData(answer);
      },
      (e) => setError(errorText(e)),
    );
  }, [api, path, optional, version]);
  return { data, missing, error, setError, reload: () => setVersion((v) => v + 1) };
}

/** Runs an admin action once the question is confirmed, then reloads the list or shows what went wrong. */
async function confirmThen(question: string, action: () => Promise<unknown>, list: { reload(): void; setError(error: string | null): void }) {
  if (!confirm(question)) return;
  try {
    await action();
    list.reload();
  } catch (error) {
    list.setError(errorText(error));
  }
}

interface Model {
  name: string;
  type: string;
  status: string;
  sizeBytes: number | null;
  sha256: string | null;
  nodes?: string[];
  failedReason: string | null;
  lastModificationTime: string;
}

function ModelsPanel({ api }: { api: Api }) {
  const models = useLoaded<Model[]>(api, "/models");
  const [name, setName] = useState("");
  const [type, setType] = useState("checkpoint");
  const [file, setFile] = useState<File | null>(null);
  const [multipart, setMultipart] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function upload(e: Event) {
    e.preventDefault();
    if (!file || !name) return;
    models.setError(null);
    setDone(null);
    setProgress(0);
    try {
      await api.call("POST", "/models", { name, type }).catch((error) => {
        // Uploading again to a registered model replaces its file.
        if (!(error instanceof ApiError && error.code === "model_exists")) throw error;
      });
      const uploaded = await uploadModelFile(api, name, file, multipart, setProgress);
      setDone(`Uploaded ${name} (sha256 ${uploaded.sha256})`);
      models.reload();
    } catch (error) {
      models.setError(errorText(error));
      setProgress(null);
    }
  }

  const remove = (model: string) =>
    confirmThen(`Delete model ${model}? Its waiting tasks are cancelled.`, () => api.call("DELETE", `/models/${encodeURIComponent(model)}`), models);

  return (
    <div>
      <form class="panel row wrap" onSubmit={upload} aria-label="Upload a model">
        <TextField label="Name" value={name} onInput={setName} />
        <Select label="Type" value={type} options={MODEL_TYPES} onChange={setType} />
        <label>
          File
          <input
            type="file"
            required
            onChange={(e) => {
              const picked = (e.currentTarget as HTMLInputElement).files?.[0] ?? null;
              setFile(picked);
              setMultipart((picked?.size ?? 0) > SINGLE_REQUEST_MAX_BYTES);
              if (picked && !name) setName(picked.name.replace(/\.[^.]+$/, ""));
            }}
          />
        </label>
        <label class="check">
          <input type="checkbox" checked={multipart} onChange={(e) => setMultipart((e.currentTarget as HTMLInputElement).checked)} />
          multipart
        </label>
        <button type="submit" class="primary" disabled={!file || (progress !== null && progress < 1 && done === null)}>
          Upload
        </button>
        {progress !== null && <ProgressBar fraction={progress} label="Upload" />}
        {done && (
          <p class="ok" data-testid="upload-done">
            {done}
          </p>
        )}
      </form>
      <ErrorNote error={models.error} />
      <table>
        <TableHead labels={["name", "type", "status", "size", "sha256", "loaded on", "modified", ""]} />
        <tbody>
          {(models.data ?? []).map((m) => (
            <tr key={m.name} data-testid="model-row">
              <td>{m.name}</td>
              <td>{m.type}</td>
              <td title={m.failedReason ?? ""}>{m.status}</td>
              <td>{formatBytes(m.sizeBytes)}</td>
              <td>
                <code>{m.sha256?.slice(0, 12) ?? "—"}</code>
              </td>
              <td>{m.nodes?.join(", ") || "—"}</td>
              <td>{ago(m.lastModificationTime)}</td>
              <td>
                <button type="button" class="link danger" onClick={() => remove(m.name)}>
                  delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface Pool {
  model: string;
  concurrencyCap: number;
  minNodes: number;
  maxNodes: number;
  instanceType: string;
  gpuMemorySize: number;
  queueDepth: number;
  running: number;
  nodes: string[];
}

function PoolRow({ api, pool, onSaved }: { api: Api; pool: Pool; onSaved: (error: string | null) => void }) {
  const [edit, setEdit] = useState(pool);
  const number = (field: "concurrencyCap" | "minNodes" | "maxNodes") => (
    <input type="number" min={0} value={edit[field]} onInput={(e) => setEdit({ ...edit, [field]: Number((e.currentTarget as HTMLInputElement).value) })} />
  );
  async function save() {
    try {
      const answer = await api.call<{ failFuncList: string[]; errMsg: string }>("POST", "/batch_update_sd_resource", {
        models: [pool.model],
        concurrencyCap: edit.concurrencyCap,
        minNodes: edit.minNodes,
        maxNodes: edit.maxNodes,
        instanceType: edit.instanceType,
      });
      onSaved(answer.failFuncList.length > 0 ? answer.errMsg : null);
    } catch (error) {
      onSaved(errorText(error));
    }
  }
  return (
    <tr>
      <td>{pool.model}</td>
      <td>{number("concurrencyCap")}</td>
      <td>{number("minNodes")}</td>
      <td>{number("maxNodes")}</td>
      <td>
        <input value={edit.instanceType} placeholder="any" onInput={(e) => setEdit({ ...edit, instanceType: (e.currentTarget as HTMLInputElement).value })} />
      </td>
      <td>{pool.queueDepth}</td>
      <td>{pool.running}</td>
      <td>{pool.nodes.join(", ") || "—"}</td>
      <td>
        <button type="button" onClick={save}>
          Save
        </button>
      </td>
    </tr>
  );
}

function PoolsPanel({ api }: { api: Api }) {
  const pools = useLoaded<{ functions: Pool[] }>(api, "/list/sdapi/functions");
  return (
    <div>
      <Note>One pool per checkpoint: how many of its tasks run at once (cap), the nodes kept on it (min/max, 0 = no limit) and the GPU class they need.</Note>
      <ErrorNote error={pools.error} />
      <table>
        <TableHead labels={["checkpoint", "cap", "min nodes", "max nodes", "GPU class", "waiting", "running", "nodes", ""]} />
        <tbody>
          {(pools.data?.functions ?? []).map((pool) => (
            <PoolRow
              key={pool.model}
              api={api}
              pool={pool}
              onSaved={(error) => {
                pools.setError(error);
                pools.reload();
              }}
            />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function NodesPanel({ api }: { api: Api }) {
  const nodes = useLoaded<Array<Record<string, unknown>>>(api, "/nodes");
  const rows = (nodes.data ?? []).map((n) => ({
    ...n,
    lastSeenAt: ago(n.lastSeenAt as string),
    gpu: `${n.gpuClass} (${formatBytes(Number(n.gpuMemoryMb) * 1024 * 1024)})`,
  }));
  return (
    <div>
      <ErrorNote error={nodes.error} />
      <DataTable
        rows={rows}
        columns={[
          { field: "nodeId", label: "node" },
          { field: "status", label: "status" },
          { field: "gpu", label: "GPU" },
          { field: "loadedCheckpoint", label: "loaded" },
          { field: "cachedCheckpoints", label: "cached checkpoints" },
          ...(rows.some((r) => "ramCheckpoints" in r) ? [{ field: "ramCheckpoints", label: "in RAM" }] : []),
          { field: "cachedAddons", label: "cached add-ons" },
          { field: "currentTaskId", label: "task" },
          { field: "agentVersion", label: "agent" },
          { field: "lastSeenAt", label: "last seen" },
        ]}
      />
    </div>
  );
}

interface Key {
  id: string;
  name: string;
  role: string;
  tokenPrefix: string;
  createdAt: string;
  revokedAt: string | null;
  limits?: Record<string, unknown>;
}

function LimitsEditor({ api, apiKey, onSaved }: { api: Api; apiKey: Key; onSaved: (error: string | null) => void }) {
  const [text, setText] = useState(JSON.stringify(apiKey.limits ?? {}, null, 1));
  async function save() {
    try {
      await api.call("PUT", `/keys/${encodeURIComponent(apiKey.id)}/limits`, JSON.parse(text));
      onSaved(null);
    } catch (error) {
      onSaved(isMissingRoute(error) ? "This server has no per-key limits yet (PUT /keys/{id}/limits)." : errorText(error));
    }
  }
  return (
    <details>
      <summary>limits</summary>
      <textarea rows={4} value={text} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
      <button type="button" onClick={save}>
        Save limits
      </button>
    </details>
  );
}

function KeysPanel({ api }: { api: Api }) {
  const keys = useLoaded<Key[]>(api, "/keys");
  const [name, setName] = useState("");
  const [role, setRole] = useState("user");
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);

  async function create(e: Event) {
    e.preventDefault();
    try {
      const key = await api.call<{ name: string; token: string }>("POST", "/keys", { name, role });
      setCreated({ name: key.name, token: key.token });
      setName("");
      keys.reload();
    } catch (error) {
      keys.setError(errorText(error));
    }
  }

  const revoke = (key: Key) =>
    confirmThen(`Revoke ${key.name}? Clients using it are refused from now on.`, () => api.call("DELETE", `/keys/${encodeURIComponent(key.id)}`), keys);

  return (
    <div>
      <form class="panel row wrap" onSubmit={create} aria-label="Create a key">
        <TextField label="Name" value={name} onInput={setName} />
        <Select label="Role" value={role} options={ROLES} onChange={setRole} />
        <button type="submit" class="primary">
          Create key
        </button>
      </form>
      {created && (
        <div class="token" data-testid="new-token">
          <p>
            The key <b>{created.name}</b>. Copy it now: it is shown only once.
          </p>
          <code>{created.token}</code>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(created.token)}>
            Copy
          </button>
          <button type="button" class="link" onClick={() => setCreated(null)}>
            I have saved it
          </button>
        </div>
      )}
      <ErrorNote error={keys.error} />
      <table>
        <TableHead labels={["name", "role", "prefix", "created", "revoked", ""]} />
        <tbody>
          {(keys.data ?? []).map((key) => (
            <tr key={key.id} data-testid="key-row">
              <td>{key.name}</td>
              <td>{key.role}</td>
              <td>
                <code>{key.tokenPrefix}…</code>
              </td>
              <td>{ago(key.createdAt)}</td>
              <td>{key.revokedAt ? ago(key.revokedAt) : "—"}</td>
              <td>
                {key.limits !== undefined && <LimitsEditor api={api} apiKey={key} onSaved={(error) => (error ? keys.setError(error) : keys.reload())} />}
                {!key.revokedAt && (
                  <button type="button" class="link danger" onClick={() => revoke(key)}>
                    revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A route newer servers have (GET /usage, GET /autoscale): its answer, or a note that it is not here. */
function OptionalPanel({ api, path, what }: { api: Api; path: string; what: string }) {
  const loaded = useLoaded<unknown>(api, path, true);
  return (
    <div>
      <ErrorNote error={loaded.error} />
      {loaded.missing && (
        <Note>
          This server does not offer {what} (<code>GET {path}</code>).
        </Note>
      )}
      {loaded.data !== null && <AnswerView data={loaded.data} />}
      <button type="button" onClick={loaded.reload}>
        Refresh
      </button>
    </div>
  );
}

export function AdminPage({ api, tab }: { api: Api; tab: AdminTab }) {
  return (
    <div class="admin">
      <nav class="tabs">
        {ADMIN_TABS.map((t) => (
          <a key={t} href={`#/admin/${t}`} class={t === tab ? "active" : ""}>
            {t}
          </a>
        ))}
      </nav>
      {tab === "models" && <ModelsPanel api={api} />}
      {tab === "pools" && <PoolsPanel api={api} />}
      {tab === "nodes" && <NodesPanel api={api} />}
      {tab === "keys" && <KeysPanel api={api} />}
      {tab === "usage" && <OptionalPanel api={api} path="/usage" what="usage metering" />}
      {tab === "autoscaler" && <OptionalPanel api={api} path="/autoscale" what="an autoscaler (desired vs current nodes per group)" />}
    </div>
  );
}
