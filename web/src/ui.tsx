import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type Ctx, type Me } from './api';

// ---- routing: path + query string are the page's state ----

export interface Loc {
  path: string;
  query: URLSearchParams;
}

export function readLoc(): Loc {
  return { path: location.pathname || '/', query: new URLSearchParams(location.search) };
}

/** Query keys that follow the user from page to page. */
const sticky = ['reseller', 'tz'];

export interface App {
  ctx: Ctx;
  me: Me;
  loc: Loc;
  /** Goes to path; params replace the page's own query (sticky keys are kept). */
  nav: (path: string, params?: Record<string, string>) => void;
  /** Changes some of this page's query keys (empty string removes one). */
  setQuery: (patch: Record<string, string>, replace?: boolean) => void;
  href: (path: string, params?: Record<string, string>) => string;
  unreadChanged: () => void;
}

export const AppContext = createContext<App>(null as unknown as App);
export const useApp = () => useContext(AppContext);

export function hrefFor(loc: Loc, path: string, params: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  for (const k of sticky) {
    const v = loc.query.get(k);
    if (v) q.set(k, v);
  }
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export function Link({ to, params, children, class: cls, ...rest }: { to: string; params?: Record<string, string>; children: ComponentChildren; class?: string; [k: string]: unknown }) {
  const app = useApp();
  const href = app.href(to, params);
  return (
    <a
      href={href}
      class={cls}
      {...rest}
      onClick={(e: MouseEvent) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        app.nav(to, params);
      }}
    >
      {children}
    </a>
  );
}

// ---- data loading ----

export interface Async<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs load whenever deps change (and every pollMs if given), keeping the
 * last data while reloading so a refresh never blanks the page.
 */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[], pollMs = 0): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const gen = useRef(0);
  const [tick, setTick] = useState(0);
  const key = JSON.stringify(deps);
  const lastKey = useRef(key);

  useEffect(() => {
    const my = ++gen.current;
    const changed = lastKey.current !== key;
    lastKey.current = key;
    setState((s) => ({ data: changed ? undefined : s.data, error: undefined, loading: true }));
    load().then(
      (data) => my === gen.current && setState({ data, loading: false }),
      (err) => {
        if (my !== gen.current) return;
        const e = err instanceof ApiError ? err : new ApiError(0, 'client', String(err?.message ?? err));
        setState((s) => ({ data: changed ? undefined : s.data, error: e, loading: false }));
      },
    );
  }, [key, tick]);

  useEffect(() => {
    if (!pollMs) return;
    const id = setInterval(() => {
      if (document.visibilityState !== 'hidden') setTick((t) => t + 1);
    }, pollMs);
    return () => clearInterval(id);
  }, [pollMs, key]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

// ---- states ----

export function Loading({ what = 'Loading…' }: { what?: string }) {
  return (
    <div class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {what}
    </div>
  );
}

export function ErrorBox({ error, retry, what }: { error: ApiError; retry?: () => void; what?: string }) {
  const missing = error.status === 404 && (error.code === 'route_not_found' || error.code === 'not_found' || error.code === 'http_404');
  return (
    <div class="state error" role="alert">
      <strong>{what ? `${what}: ` : ''}{missing ? 'not available on this server yet' : 'could not load'}</strong>
      <span class="muted">
        {error.message}
        {error.status ? ` (HTTP ${error.status}${error.code ? `, ${error.code}` : ''})` : ''}
      </span>
      {retry && (
        <button type="button" class="btn small" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

/** Loading / error / content of one panel. */
export function Panel<T>({ a, what, children, empty }: { a: Async<T>; what: string; children: (d: T) => ComponentChildren; empty?: (d: T) => boolean }) {
  if (a.data === undefined) {
    if (a.error) return <ErrorBox error={a.error} retry={a.reload} what={what} />;
    return <Loading what={`Loading ${what.toLowerCase()}…`} />;
  }
  return (
    <>
      {a.error && <ErrorBox error={a.error} retry={a.reload} what={`${what} (showing the last data)`} />}
      {empty && empty(a.data) ? <Empty>No {what.toLowerCase()} to show.</Empty> : children(a.data)}
    </>
  );
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge b-${kind.replace(/[^a-z0-9_-]/gi, '')}`}>{children}</span>;
}

export function Section({ title, actions, children, id }: { title: string; actions?: ComponentChildren; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" id={id} aria-labelledby={id ? `${id}-h` : undefined}>
      <header class="card-h">
        <h2 id={id ? `${id}-h` : undefined}>{title}</h2>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}
