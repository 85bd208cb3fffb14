// A task followed through its event stream: its progress while live, then its result.
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { followTask, type TaskProgress, type TaskResult } from "../task-events";

export function useTaskEvents(api: Api, taskId: string | null) {
  const [progress, setProgress] = useState<TaskProgress | null>(null);
  const [result, setResult] = useState<TaskResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setProgress(null);
    setResult(null);
    setError(null);
    if (!taskId) return;
    return followTask(
      api.key,
      taskId,
      (event) => {
        if (event.event === "end") {
          setProgress(null);
          setResult(event.data);
        } else setProgress(event.data);
      },
      setError,
    );
  }, [api, taskId]);
  return { progress, result, error };
}
