import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import './style.css';
import { api, ApiError, signOut, storedKey, storedReseller, storeKey, storeReseller, type Ctx, type Me, type Notifications, type Overview } from './api';
import { AppContext, hrefFor, Link, readLoc, useAsync, type App, type Loc } from './ui';
import { OverviewPage } from './pages/overview';
import { OrganizationsPage } from './pages/organizations';
import { OrganizationPage } from './pages/organization';
import { UsagePage } from './pages/usage';
import { AlertsPage } from './pages/alerts';
import { SettingsPage } from './pages/settings';
import { TimeZoneSelect } from './tz';

/**
 * Who the key is: GET /v1/me, or (on a server without it) worked out from
 * /v1/overview: an operator key is told to pick a reseller.
 */
async function whoAmI(key: string): Promise<Me> {
  const ctx: Ctx = { key, reseller: '', tz: '' };
  try {
    return await api<Me>(ctx, '/v1/me');
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  try {
    const o = await api<Overview>(ctx, '/v1/overview');
    return { role: 'reseller', reseller_id: o.reseller, revenue: Array.isArray(o.revenue) };
  } catch (err) {
    if (err instanceof ApiError && err.status === 400 && err.param === 'reseller') {
      return { role: 'operator', reseller_id: '', revenue: true };
    }
    throw err;
  }
}

function SignIn({ onKey, error }: { onKey: (k: string) => void; error?: string }) {
  const [key, setKey] = useState('');
  return (
    <main class="signin">
      <form
        class="card signin-card"
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) onKey(key.trim());
        }}
      >
        <h1>
          <span class="logo" aria-hidden="true">▮▮</span> tally
        </h1>
        <p class="muted">Reseller dashboard. Sign in with your API key; it is kept in this browser tab only.</p>
        <label for="key">API key</label>
        <input id="key" name="key" type="password" autocomplete="off" placeholder="tly_…" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} autoFocus required />
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="btn primary">
          Sign in
        </button>
      </form>
    </main>
  );
}

const nav = [
  { to: '/', label: 'Overview' },
  { to: '/organizations', label: 'Organizations' },
  { to: '/usage', label: 'Usage analytics' },
  { to: '/alerts', label: 'Alerts' },
  { to: '/settings', label: 'Settings' },
];

function ResellerPicker({ app, value, onPick }: { app: App; value: string; onPick: (r: string) => void }) {
  const list = useAsync(() => api<{ resellers: { id: string; organizations: number }[] }>({ ...app.ctx, reseller: '' }, '/v1/resellers'), [app.ctx.key]);
  const [typed, setTyped] = useState(value);
  if (list.data) {
    return (
      <label class="inline">
        <span>Reseller</span>
        <select id="reseller-picker" value={value} onChange={(e) => onPick((e.target as HTMLSelectElement).value)}>
          <option value="">Pick a reseller…</option>
          {list.data.resellers.map((r) => (
            <option value={r.id} key={r.id}>
              {r.id} ({r.organizations} orgs)
            </option>
          ))}
        </select>
      </label>
    );
  }
  // Without /v1/resellers an operator types the id.
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        onPick(typed.trim());
      }}
    >
      <label for="reseller-input">Reseller</label>
      <input id="reseller-input" size={10} value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} placeholder={list.loading ? 'loading…' : 'reseller id'} />
      <button class="btn small" type="submit">
        Open
      </button>
    </form>
  );
}

function Page({ app }: { app: App }) {
  const p = app.loc.path.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/overview') return <OverviewPage />;
  if (p === '/organizations') return <OrganizationsPage />;
  const m = /^\/organizations\/([^/]+)$/.exec(p);
  if (m) return <OrganizationPage id={decodeURIComponent(m[1])} />;
  if (p === '/usage') return <UsagePage />;
  if (p === '/alerts') return <AlertsPage />;
  if (p === '/settings') return <SettingsPage />;
  return (
    <div class="card">
      <h1>Page not found</h1>
      <p>
        <Link to="/">Back to the overview</Link>
      </p>
    </div>
  );
}

function Shell({ keyValue, me, onSignOut }: { keyValue: string; me: Me; onSignOut: () => void }) {
  const [loc, setLoc] = useState<Loc>(readLoc());
  const [unreadTick, setUnreadTick] = useState(0);
  useEffect(() => {
    const on = () => setLoc(readLoc());
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);

  // The operator's reseller lives in the URL (shareable) and the session.
  const reseller = me.role === 'operator' ? loc.query.get('reseller') || storedReseller() : '';
  const tz = loc.query.get('tz') || 'UTC';
  const ctx: Ctx = useMemo(() => ({ key: keyValue, reseller, tz }), [keyValue, reseller, tz]);

  const app: App = {
    ctx,
    me,
    loc,
    href: (path, params) => hrefFor(loc, path, params),
    nav: (path, params) => {
      history.pushState(null, '', hrefFor(loc, path, params));
      setLoc(readLoc());
      scrollTo(0, 0);
    },
    setQuery: (patch, replace) => {
      const q = new URLSearchParams(loc.query);
      for (const [k, v] of Object.entries(patch)) {
        if (v) q.set(k, v);
        else q.delete(k);
      }
      const s = q.toString();
      const url = s ? `${loc.path}?${s}` : loc.path;
      if (replace) history.replaceState(null, '', url);
      else history.pushState(null, '', url);
      setLoc(readLoc());
    },
    unreadChanged: () => setUnreadTick((t) => t + 1),
  };

  useEffect(() => {
    if (me.role === 'operator' && reseller && !loc.query.get('reseller')) app.setQuery({ reseller }, true);
  }, [reseller]);

  const needReseller = me.role === 'operator' && !reseller;
  const unread = useAsync(() => (needReseller ? Promise.resolve(undefined) : api<Notifications>(ctx, '/v1/notifications', { limit: 1 })), [ctx, unreadTick], 30_000);
  const unreadN = unread.data?.unread;
  const current = loc.path.replace(/\/+$/, '') || '/';

  return (
    <AppContext.Provider value={app}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <div class="layout">
        <aside class="sidebar">
          <div class="brand">
            <span class="logo" aria-hidden="true">▮▮</span> tally
          </div>
          <nav aria-label="Main">
            <ul>
              {nav.map((n) => {
                const active = n.to === '/' ? current === '/' || current === '/overview' : current.startsWith(n.to);
                return (
                  <li key={n.to}>
                    <Link to={n.to} class={active ? 'active' : ''} aria-current={active ? 'page' : undefined}>
                      {n.label}
                      {n.to === '/alerts' && unreadN ? (
                        <span class="count" id="unread-count" aria-label={`${unreadN} unread`}>
                          {unreadN}
                        </span>
                      ) : null}
                    </Link>
                  </li>
                );
              })}
            </ul>
          </nav>
          <div class="who muted">
            {me.role === 'operator' ? 'Operator key' : `Reseller ${me.reseller_id}`}
          </div>
        </aside>
        <div class="content">
          <header class="topbar">
            {me.role === 'operator' && (
              <ResellerPicker
                app={app}
                value={reseller}
                onPick={(r) => {
                  storeReseller(r);
                  app.setQuery({ reseller: r });
                }}
              />
            )}
            <TimeZoneSelect id="tz-global" value={tz} onChange={(z) => app.setQuery({ tz: z === 'UTC' ? '' : z })} />
            <button type="button" class="btn" id="sign-out" onClick={onSignOut}>
              Sign out
            </button>
          </header>
          <main id="main" tabIndex={-1}>
            {needReseller ? (
              <div class="card">
                <h1>Pick a reseller</h1>
                <p class="muted">An operator key reads one reseller at a time: choose it at the top of the page.</p>
              </div>
            ) : (
              <Page app={app} key={ctx.reseller} />
            )}
          </main>
        </div>
      </div>
    </AppContext.Provider>
  );
}

function Root() {
  const [key, setKey] = useState(storedKey());
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string>('');
  const [checking, setChecking] = useState(!!key);

  useEffect(() => {
    if (!key) return;
    setChecking(true);
    whoAmI(key).then(
      (m) => {
        storeKey(key);
        setMe(m);
        setError('');
        setChecking(false);
      },
      (err) => {
        signOut();
        setKey('');
        setMe(null);
        setChecking(false);
        setError(err instanceof ApiError && err.status === 401 ? 'That key was not accepted (unknown or revoked).' : `Sign-in failed: ${(err as Error).message}`);
      },
    );
  }, [key]);

  if (!key || (!me && !checking)) return <SignIn onKey={setKey} error={error} />;
  if (!me) {
    return (
      <main class="signin">
        <div class="state loading" role="status">
          <span class="spinner" aria-hidden="true" />
          Signing in…
        </div>
      </main>
    );
  }
  return (
    <Shell
      keyValue={key}
      me={me}
      onSignOut={() => {
        signOut();
        setMe(null);
        setKey('');
        history.pushState(null, '', '/');
      }}
    />
  );
}

render(<Root />, document.getElementById('app')!);
