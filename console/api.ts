// The console's calls to the Worker: JSON with the signed-in key, problem+json as errors, and
// uploads with progress (XMLHttpRequest: fetch reports no upload progress).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A route this server does not have (yet): features that arrive with newer servers show a note instead. */
export function isMissingRoute(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404 && error.code === "not_found" && error.message.startsWith("No route");
}

function parseBody(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

function errorOf(status: number, statusText: string, body: unknown): ApiError {
  const problem = (body && typeof body === "object" ? body : {}) as { code?: string; detail?: string; title?: string; error?: string };
  const message = problem.detail ?? problem.error ?? problem.title ?? (typeof body === "string" && body ? body : statusText);
  return new ApiError(status, problem.code ?? "", message || `HTTP ${status}`);
}

export interface Api {
  readonly key: string;
  call<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  get<T>(path: string): Promise<T>;
  /** GET a route that newer servers have: null when this one does not. */
  getIfServed<T>(path: string): Promise<T | null>;
  upload<T>(method: string, path: string, body: Blob, onProgress: (fraction: number) => void, headers?: Record<string, string>): Promise<T>;
}

export function createApi(key: string): Api {
  const auth = { authorization: `Bearer ${key}` };
  const api: Api = {
    key,
    async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const init: RequestInit = { method, headers: { ...auth, ...headers } };
      if (body instanceof Blob) init.body = body;
      else if (body !== undefined) {
        init.body = JSON.stringify(body);
        init.headers = { ...init.headers, "content-type": "application/json" };
      }
      const res = await fetch(path, init);
      const parsed = parseBody(await res.text());
      if (!res.ok) throw errorOf(res.status, res.statusText, parsed);
      return parsed as T;
    },
    get: (path) => api.call("GET", path),
    async getIfServed<T>(path: string) {
      try {
        return await api.get<T>(path);
      } catch (error) {
        if (isMissingRoute(error)) return null;
        throw error;
      }
    },
    upload<T>(method: string, path: string, body: Blob, onProgress: (fraction: number) => void, headers: Record<string, string> = {}) {
      return new Promise<T>((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open(method, path);
        for (const [name, value] of Object.entries({ ...auth, ...headers })) xhr.setRequestHeader(name, value);
        xhr.upload.onprogress = (event) => {
          if (event.lengthComputable) onProgress(event.loaded / event.total);
        };
        xhr.onload = () => {
          const parsed = parseBody(xhr.responseText);
          if (xhr.status >= 200 && xhr.status < 300) {
            onProgress(1);
            resolve(parsed as T);
          } else reject(errorOf(xhr.status, xhr.statusText, parsed));
        };
        xhr.onerror = () => reject(new ApiError(0, "network", "The upload was interrupted"));
        xhr.send(body);
      });
    },
  };
  return api;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
