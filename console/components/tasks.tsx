// My tasks: a gallery of the key's tasks (newest first, filtered by status and kind) with cancel,
// download and delete, and one task's page with its live progress or its result.
import { useEffect, useState } from "preact/hooks";
import { type Api, errorText, isMissingRoute } from "../api";
import type { TaskResult } from "../task-events";
import { LiveProgress, ResultView } from "./task-view";
import { ago, ErrorNote, Note, Select } from "./ui";
import { useTaskEvents } from "./use-task-events";

interface TaskSummary {
  taskId: string;
  status: string;
  kind: string;
  checkpoint: string;
  createdAt: string;
  finishedAt: string | null;
}

const STATUSES = ["waiting", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["txt2img", "img2img", "extras", "passthrough"];
const PAGE_SIZE = 24;
const taskPath = (taskId: string) => `/tasks/${encodeURIComponent(taskId)}`;
const isLive = (status: string) => status === "waiting" || status === "running";

/** Cancels or deletes a task; answers a note for the user, or null when it went through. */
async function taskAction(api: Api, action: "cancel" | "delete", taskId: string): Promise<string | null> {
  try {
    if (action === "cancel") await api.call("POST", `${taskPath(taskId)}/cancellation`);
    else await api.call("DELETE", taskPath(taskId));
    return null;
  } catch (error) {
    if (action === "delete" && isMissingRoute(error)) return "This server cannot delete tasks yet (DELETE /tasks/{id}).";
    return errorText(error);
  }
}

function TaskCard({ api, task, onChanged }: { api: Api; task: TaskSummary; onChanged: (note: string | null) => void }) {
  const [result, setResult] = useState<TaskResult | null>(null);
  useEffect(() => {
    if (task.status === "succeeded") api.get<TaskResult>(`${taskPath(task.taskId)}/result`).then(setResult, () => undefined);
  }, [api, task.taskId, task.status]);
  const thumbnail = result?.ossUrl[0];
  return (
    <article class="card" data-testid="task-card">
      <a href={`#/tasks/${encodeURIComponent(task.taskId)}`} class="thumb">
        {thumbnail ? <img src={thumbnail} alt={task.taskId} loading="lazy" /> : <span class="muted">{task.kind}</span>}
      </a>
      <div class="card-body">
        <b class={`status ${task.status}`}>{task.status}</b> <span class="muted">{task.kind}</span>
        <div class="muted small">
          {task.checkpoint} · {ago(task.createdAt)}
        </div>
        <div class="row small">
          {isLive(task.status) && (
            <button type="button" class="link" onClick={async () => onChanged(await taskAction(api, "cancel", task.taskId))}>
              cancel
            </button>
          )}
          {thumbnail && (
            <a href={thumbnail} download={`${task.taskId}.png`}>
              download
            </a>
          )}
          {!isLive(task.status) && (
            <button type="button" class="link" onClick={async () => onChanged(await taskAction(api, "delete", task.taskId))}>
              delete
            </button>
          )}
        </div>
      </div>
    </article>
  );
}

export function TaskGallery({ api }: { api: Api }) {
  const [status, setStatus] = useState("");
  const [kind, setKind] = useState("");
  const [tasks, setTasks] = useState<TaskSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);

  async function load(after: string | null) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...(status ? { status } : {}), ...(after ? { cursor: after } : {}) });
    try {
      const page = await api.get<{ tasks: TaskSummary[]; nextCursor: string | null }>(`/tasks?${query}`);
      setTasks((shown) => (after ? [...shown, ...page.tasks] : page.tasks));
      setCursor(page.nextCursor);
    } catch (e) {
      setError(errorText(e));
    }
  }

  useEffect(() => {
    void load(null);
  }, [api, status, reloads]);

  const shown = kind ? tasks.filter((t) => t.kind === kind) : tasks;
  return (
    <div class="panel">
      <div class="row filters">
        <Select label="Status" value={status} options={STATUSES} onChange={setStatus} empty="any" />
        <Select label="Kind" value={kind} options={KINDS} onChange={setKind} empty="any" />
        <button type="button" onClick={() => setReloads((n) => n + 1)}>
          Refresh
        </button>
      </div>
      <ErrorNote error={error} />
      {shown.length === 0 ? (
        <Note>No tasks{status || kind ? " match these filters" : " yet: make one in the playground"}.</Note>
      ) : (
        <div class="gallery">
          {shown.map((task) => (
            <TaskCard
              key={task.taskId}
              api={api}
              task={task}
              onChanged={(note) => {
                setError(note);
                setReloads((n) => n + 1);
              }}
            />
          ))}
        </div>
      )}
      {cursor && (
        <button type="button" onClick={() => void load(cursor)}>
          More
        </button>
      )}
    </div>
  );
}

export function TaskPage({ api, taskId }: { api: Api; taskId: string }) {
  const { progress, result, error: streamError } = useTaskEvents(api, taskId);
  const [error, setError] = useState<string | null>(null);
  return (
    <div class="panel">
      <p>
        <a href="#/tasks">← My tasks</a> · task <code>{taskId}</code>
      </p>
      <ErrorNote error={error ?? streamError} />
      {progress && (
        <>
          <LiveProgress progress={progress} />
          <button type="button" onClick={async () => setError(await taskAction(api, "cancel", taskId))}>
            Cancel
          </button>
        </>
      )}
      {result && <ResultView result={result} />}
    </div>
  );
}
