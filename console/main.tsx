// The sdgate console: sign in with an API key, then the playground, your tasks and (admin keys)
// the admin pages. Pages are addressed by the URL's hash (#/playground, #/tasks/<id>, #/admin/keys).
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { type Api, ApiError, createApi, errorText } from "./api";
import { ADMIN_TABS, AdminPage, type AdminTab } from "./components/admin";
import { Playground } from "./components/playground";
import { TaskGallery, TaskPage } from "./components/tasks";
import { ErrorNote, TextField } from "./components/ui";
import { forgetKey, savedKey, saveKey } from "./session";

type Role = "user" | "admin";

/** What the key may do: any console route works for user and admin keys; only admins list keys. */
async function roleOf(api: Api): Promise<Role> {
  await api.get("/tasks?limit=1");
  try {
    await api.get("/keys");
    return "admin";
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return "user";
    throw error;
  }
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

function SignIn({ onSignedIn, error }: { onSignedIn: (key: string, remember: boolean) => void; error: string | null }) {
  const [key, setKey] = useState("");
  const [remember, setRemember] = useState(false);
  return (
    <form
      class="panel signin"
      onSubmit={(e) => {
        e.preventDefault();
        onSignedIn(key.trim(), remember);
      }}
    >
      <h1>sdgate</h1>
      <p class="muted">Sign in with an API key (a user key, or an admin key for the admin pages).</p>
      <TextField label="API key" type="password" value={key} onInput={setKey} />
      <label class="check">
        <input type="checkbox" checked={remember} onChange={(e) => setRemember((e.currentTarget as HTMLInputElement).checked)} />
        Remember on this browser
      </label>
      <button type="submit" class="primary">
        Sign in
      </button>
      <ErrorNote error={error} />
      <p class="muted small">
        API reference: <a href="/docs">/docs</a>
      </p>
    </form>
  );
}

function App() {
  const [key, setKey] = useState<string | null>(savedKey());
  const [role, setRole] = useState<Role | null>(null);
  const [error, setError] = useState<string | null>(null);
  const api = useMemo(() => (key ? createApi(key) : null), [key]);
  const hash = useHash();

  useEffect(() => {
    if (!api) return;
    roleOf(api).then(setRole, (e) => {
      setError(e instanceof ApiError && e.status === 403 ? "Node keys cannot use the console: sign in with a user or admin key." : errorText(e));
      forgetKey();
      setKey(null);
    });
  }, [api]);

  if (!api || !role)
    return (
      <SignIn
        error={error}
        onSignedIn={(k, remember) => {
          setError(null);
          saveKey(k, remember);
          setKey(k);
        }}
      />
    );

  const [, page = "playground", detail] = hash.replace(/^#/, "").split("/");
  const adminTab: AdminTab = ADMIN_TABS.includes(detail as AdminTab) ? (detail as AdminTab) : "models";
  return (
    <div class="layout">
      <header>
        <b>sdgate</b>
        <nav>
          <a href="#/playground" class={page === "playground" ? "active" : ""}>
            Playground
          </a>
          <a href="#/tasks" class={page === "tasks" ? "active" : ""}>
            My tasks
          </a>
          {role === "admin" && (
            <a href="#/admin/models" class={page === "admin" ? "active" : ""}>
              Admin
            </a>
          )}
          <a href="/docs">API reference</a>
        </nav>
        <span class="muted small">{role} key</span>
        <button
          type="button"
          class="link"
          onClick={() => {
            forgetKey();
            setRole(null);
            setKey(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {page === "tasks" && detail ? <TaskPage api={api} taskId={decodeURIComponent(detail)} /> : null}
        {page === "tasks" && !detail ? <TaskGallery api={api} /> : null}
        {page === "admin" && role === "admin" ? <AdminPage api={api} tab={adminTab} /> : null}
        {page !== "tasks" && page !== "admin" ? <Playground api={api} /> : null}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
