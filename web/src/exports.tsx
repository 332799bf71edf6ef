import { useState } from 'preact/hooks';
import { ApiError, download } from './api';
import { ErrorBox, useApp } from './ui';

export interface ExportItem {
  id: string;
  label: string;
  path: string;
  params: Record<string, string | number | undefined>;
  fallback: string;
}

/**
 * Buttons that download CSV reports: fetched with the Bearer header (a plain
 * link cannot carry it) and saved through a Blob link named after the
 * response's Content-Disposition.
 */
export function ExportBar({ items, intro = 'Download for these filters:' }: { items: ExportItem[]; intro?: string }) {
  const { ctx } = useApp();
  const [busy, setBusy] = useState('');
  const [done, setDone] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const run = async (it: ExportItem) => {
    setBusy(it.id);
    setDone('');
    setErr(null);
    try {
      setDone(`Downloaded ${await download(ctx, it.path, it.params, it.fallback)}`);
    } catch (e) {
      setErr(e instanceof ApiError ? e : new ApiError(0, 'client', String(e)));
    } finally {
      setBusy('');
    }
  };
  return (
    <>
      <div class="exports" role="group" aria-label="Exports">
        <span class="muted">{intro}</span>
        {items.map((it) => (
          <button type="button" class="btn" id={it.id} key={it.id} disabled={busy === it.id} onClick={() => run(it)}>
            <span aria-hidden="true">⤓</span> {it.label}
            {busy === it.id ? '…' : ''}
          </button>
        ))}
        <span class="ok" role="status" id="export-status">
          {done}
        </span>
      </div>
      {err && <ErrorBox error={err} what="Export" />}
    </>
  );
}
