import { useState } from 'preact/hooks';
import { api, ApiError, apiSend, type Alert, type Notifications } from '../api';
import { fmtDateTime } from '../format';
import { Badge, ErrorBox, Link, Panel, Section, useApp, useAsync } from '../ui';

const kinds: Record<string, string> = { '': 'All', usage: 'Usage', billing: 'Billing', customer: 'Customer activity', system: 'System' };

function Feed() {
  const { ctx, loc, setQuery, unreadChanged } = useApp();
  const kind = loc.query.get('kind') ?? '';
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1] ?? '';
  const feed = useAsync(() => api<Notifications>(ctx, '/v1/notifications', { kind, limit: 25, cursor }), [ctx, kind, cursor], 15_000);
  const [err, setErr] = useState<ApiError | null>(null);

  const markRead = async (body: { ids?: string[]; all?: boolean }) => {
    setErr(null);
    try {
      await apiSend(ctx, 'POST', '/v1/notifications/read', body);
      feed.reload();
      unreadChanged();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  const unread = feed.data?.unread;

  return (
    <Section
      title={`Notifications${unread !== undefined ? ` · ${unread} unread` : ''}`}
      id="feed"
      actions={
        <>
          <div class="tabs" role="group" aria-label="Kind">
            {Object.entries(kinds).map(([k, v]) => (
              <button
                type="button"
                key={k}
                class={`btn small ${kind === k ? 'pressed' : ''}`}
                aria-pressed={kind === k}
                onClick={() => {
                  setCursors([]);
                  setQuery({ kind: k }, true);
                }}
              >
                {v}
              </button>
            ))}
          </div>
          <button type="button" class="btn small" id="mark-all-read" disabled={!unread} onClick={() => markRead({ all: true })}>
            Mark all read
          </button>
        </>
      }
    >
      {err && <ErrorBox error={err} what="Mark read" />}
      <Panel a={feed} what="Notifications" empty={(d) => d.notifications.length === 0}>
        {(d) => (
          <>
            <ul class="feed" id="feed-list">
              {d.notifications.map((n) => (
                <li key={n.id} class={`feed-item ${n.read === false ? 'unread' : ''}`} data-id={n.id}>
                  <span class={`sev sev-${n.severity}`} aria-label={n.severity} title={n.severity} />
                  <div class="feed-main">
                    <div class="feed-title">
                      {n.read === false && <span class="sr-only">Unread: </span>}
                      {n.title}
                      {n.state && (
                        <>
                          {' '}
                          <Badge kind={n.state}>{n.state}</Badge>
                        </>
                      )}
                    </div>
                    {n.body && <div class="muted">{n.body}</div>}
                    <div class="muted small">
                      {fmtDateTime(n.time, ctx.tz)} · {kinds[n.kind] ?? n.kind}
                      {n.org_id && (
                        <>
                          {' · '}
                          <Link to={`/organizations/${encodeURIComponent(n.org_id)}`}>{n.org_name || n.org_id}</Link>
                        </>
                      )}
                      {n.link && /^https?:\/\//.test(n.link) && (
                        <>
                          {' · '}
                          <a href={n.link} rel="noopener noreferrer" target="_blank">
                            details
                          </a>
                        </>
                      )}
                    </div>
                  </div>
                  {n.read === false && (
                    <button type="button" class="btn small" onClick={() => markRead({ ids: [n.id] })}>
                      Mark read
                    </button>
                  )}
                </li>
              ))}
            </ul>
            <nav class="pager" aria-label="Notification pages">
              <button type="button" class="btn" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                ← Newer
              </button>
              <button type="button" class="btn" disabled={!d.next_cursor} onClick={() => d.next_cursor && setCursors([...cursors, d.next_cursor])}>
                Older →
              </button>
            </nav>
          </>
        )}
      </Panel>
    </Section>
  );
}

function AlertList() {
  const { ctx, loc, setQuery } = useApp();
  const state = loc.query.get('state') ?? 'firing';
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1] ?? '';
  const list = useAsync(() => api<{ alerts: Alert[]; next_cursor?: string }>(ctx, '/v1/alerts', { state, limit: 25, cursor }), [ctx, state, cursor], 15_000);
  const [err, setErr] = useState<ApiError | null>(null);

  const ack = async (key: string) => {
    setErr(null);
    try {
      await apiSend(ctx, 'POST', `/v1/alerts/${encodeURIComponent(key)}/acknowledge`);
      list.reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };

  return (
    <Section
      title="Alerts"
      id="alerts"
      actions={
        <label class="inline">
          <span>State</span>
          <select
            id="alert-state"
            value={state}
            onChange={(e) => {
              setCursors([]);
              setQuery({ state: (e.target as HTMLSelectElement).value }, true);
            }}
          >
            <option value="firing">Firing</option>
            <option value="resolved">Resolved</option>
            <option value="">All</option>
          </select>
        </label>
      }
    >
      {err && <ErrorBox error={err} what="Acknowledge" />}
      <Panel a={list} what="Alerts" empty={(d) => d.alerts.length === 0}>
        {(d) => (
          <>
            <div class="table-wrap">
              <table class="table" id="alert-table">
                <thead>
                  <tr>
                    <th scope="col">Fired</th>
                    <th scope="col">Organization</th>
                    <th scope="col">Alert</th>
                    <th scope="col">State</th>
                    <th scope="col">Acknowledged</th>
                  </tr>
                </thead>
                <tbody>
                  {d.alerts.map((a) => (
                    <tr key={a.alert_key} data-alert={a.alert_key}>
                      <td>{fmtDateTime(a.first_fired_at, ctx.tz)}</td>
                      <td>{a.org_id ? <Link to={`/organizations/${encodeURIComponent(a.org_id)}`}>{a.org_name || a.org_id}</Link> : '—'}</td>
                      <td>
                        <div>{a.title}</div>
                        <div class="muted small">
                          {a.rule}
                          {a.details?.test ? ' · test' : ''}
                        </div>
                      </td>
                      <td>
                        <Badge kind={a.state}>{a.state}</Badge> <Badge kind={a.severity}>{a.severity}</Badge>
                      </td>
                      <td>
                        {a.acknowledged_at ? (
                          <span class="muted small">
                            {fmtDateTime(a.acknowledged_at, ctx.tz)}
                            {a.acknowledged_by ? ` by ${a.acknowledged_by}` : ''}
                          </span>
                        ) : (
                          <button type="button" class="btn small" onClick={() => ack(a.alert_key)}>
                            Acknowledge
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <nav class="pager" aria-label="Alert pages">
              <button type="button" class="btn" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                ← Newer
              </button>
              <button type="button" class="btn" disabled={!d.next_cursor} onClick={() => d.next_cursor && setCursors([...cursors, d.next_cursor])}>
                Older →
              </button>
            </nav>
          </>
        )}
      </Panel>
    </Section>
  );
}

export function AlertsPage() {
  return (
    <>
      <h1 class="page-title">Alerts and notifications</h1>
      <AlertList />
      <Feed />
      <p class="muted">
        Alert rules and webhooks are in <Link to="/settings">Settings</Link>.
      </p>
    </>
  );
}
