// Small pieces every page uses: progress bars, error notes, and a table for whatever a route answers.
import type { ComponentChildren } from "preact";
import { formatBytes as formatByteCount } from "../../gpu-node/progress-bar.ts";

export function ProgressBar({ fraction, label }: { fraction: number; label?: string }) {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  return (
    <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent} aria-label={label ?? "progress"}>
      <div class="progress-fill" style={{ width: `${percent}%` }} />
      <span class="progress-text">
        {label ? `${label} ` : ""}
        {percent}%
      </span>
    </div>
  );
}

export function ErrorNote({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Note({ children }: { children: ComponentChildren }) {
  return <p class="note">{children}</p>;
}

export function formatBytes(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? "—" : formatByteCount(bytes);
}

/** A labelled text input. */
export function TextField({ label, value, onInput, type = "text" }: { label: string; value: string; onInput: (v: string) => void; type?: string }) {
  return (
    <label>
      {label}
      <input type={type} autoComplete="off" value={value} required onInput={(e) => onInput((e.currentTarget as HTMLInputElement).value)} />
    </label>
  );
}

export function NumberField({
  label,
  value,
  onInput,
  min,
  max,
  step,
}: {
  label: string;
  value: number;
  onInput: (v: number) => void;
  min?: number;
  max?: number;
  step?: number;
}) {
  return (
    <label>
      {label}
      <input type="number" value={value} min={min} max={max} step={step} onInput={(e) => onInput(Number((e.currentTarget as HTMLInputElement).value))} />
    </label>
  );
}

/** A labelled choice among `options`; `empty` adds a first choice of "" with that text. */
export function Select({
  label,
  value,
  options,
  onChange,
  empty,
}: {
  label: string;
  value: string;
  options: readonly string[];
  onChange: (v: string) => void;
  empty?: string;
}) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value)}>
        {empty !== undefined && <option value="">{empty}</option>}
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)}h ago`;
  return new Date(iso).toLocaleString();
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(cell).join(", ") || "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A table's header row; an empty label makes a column of actions. */
export function TableHead({ labels }: { labels: string[] }) {
  return (
    <thead>
      <tr>
        {labels.map((label, i) => (
          <th key={i}>{label}</th>
        ))}
      </tr>
    </thead>
  );
}

export interface Column {
  field: string;
  label: string;
}

/** Rows of objects as a table: the columns given, or one per field any row has. */
export function DataTable({ rows, columns }: { rows: Array<Record<string, unknown>>; columns?: Column[] }) {
  const shown = columns ?? [...new Set(rows.flatMap((row) => Object.keys(row)))].map((field) => ({ field, label: field }));
  if (rows.length === 0) return <Note>Nothing yet.</Note>;
  return (
    <table>
      <TableHead labels={shown.map((c) => c.label)} />
      <tbody>
        {rows.map((row, i) => (
          <tr key={i}>
            {shown.map((c) => (
              <td key={c.field}>{cell(row[c.field])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Any JSON answer: its lists of objects as tables, its other fields as a list. */
export function AnswerView({ data }: { data: unknown }) {
  if (Array.isArray(data)) return <DataTable rows={data.filter((r): r is Record<string, unknown> => !!r && typeof r === "object")} />;
  if (!data || typeof data !== "object") return <pre>{JSON.stringify(data, null, 2)}</pre>;
  const entries = Object.entries(data as Record<string, unknown>);
  const tables = entries.filter(([, v]) => Array.isArray(v) && v.every((r) => r && typeof r === "object"));
  const scalars = entries.filter(([k]) => !tables.some(([t]) => t === k));
  return (
    <div>
      {scalars.length > 0 && (
        <dl class="fields">
          {scalars.map(([k, v]) => (
            <>
              <dt key={`${k}-t`}>{k}</dt>
              <dd key={`${k}-d`}>{cell(v)}</dd>
            </>
          ))}
        </dl>
      )}
      {tables.map(([k, v]) => (
        <section key={k}>
          <h4>{k}</h4>
          <DataTable rows={v as Array<Record<string, unknown>>} />
        </section>
      ))}
    </div>
  );
}
