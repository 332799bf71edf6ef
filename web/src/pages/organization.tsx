import { api, type Alert, type Breakdown, type OrgDetail } from '../api';
import { ChartView } from '../charts';
import { ExportBar } from '../exports';
import { fmtDate, fmtDateTime, fmtInt, fmtMinutes, fmtMoney, fmtPeriod } from '../format';
import { Badge, Empty, ErrorBox, Link, Loading, Section, useApp, useAsync } from '../ui';

function BreakdownView({ title, id, rows }: { title: string; id: string; rows: Breakdown[] }) {
  const total = rows.reduce((s, r) => s + r.minutes, 0);
  return (
    <Section title={title} id={id}>
      {rows.length === 0 ? (
        <Empty>No completed jobs this month.</Empty>
      ) : (
        <>
          <ChartView type="doughnut" label={`${title}: share of minutes`} labels={rows.map((r) => r.name)} datasets={[{ label: 'Minutes', data: rows.map((r) => r.minutes) }]} format={fmtMinutes} height={180} />
          <table class="table compact">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" class="num">Minutes</th>
                <th scope="col" class="num">Share</th>
                <th scope="col" class="num">Jobs</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.name}>
                  <td>{r.name}</td>
                  <td class="num">{fmtMinutes(r.minutes)}</td>
                  <td class="num">{total ? `${Math.round((r.minutes / total) * 100)}%` : '—'}</td>
                  <td class="num">{fmtInt(r.jobs_completed)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Section>
  );
}

/** The organization's latest alerts, newest first, as the detail response holds them. */
function AlertHistory({ alerts }: { alerts: Alert[] }) {
  const { ctx } = useApp();
  return (
    <Section title="Alert history" id="org-alerts">
      {alerts.length === 0 ? (
        <Empty>No alerts for this organization.</Empty>
      ) : (
        <table class="table compact">
          <thead>
            <tr>
              <th scope="col">Fired</th>
              <th scope="col">Rule</th>
              <th scope="col">Alert</th>
              <th scope="col">State</th>
              <th scope="col">Resolved</th>
              <th scope="col">Acknowledged</th>
            </tr>
          </thead>
          <tbody>
            {alerts.map((a) => (
              <tr key={a.alert_key} data-alert={a.alert_key}>
                <td>{fmtDateTime(a.first_fired_at, ctx.tz)}</td>
                <td>{a.rule}</td>
                <td>{a.title}</td>
                <td>
                  <Badge kind={a.state}>{a.state}</Badge>
                </td>
                <td>{a.resolved_at ? fmtDateTime(a.resolved_at, ctx.tz) : '—'}</td>
                <td>{a.acknowledged_at ? `${fmtDateTime(a.acknowledged_at, ctx.tz)}${a.acknowledged_by ? ` by ${a.acknowledged_by}` : ''}` : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

export function OrganizationPage({ id }: { id: string }) {
  const { ctx } = useApp();
  const d = useAsync(() => api<OrgDetail>(ctx, `/v1/organizations/${encodeURIComponent(id)}`), [ctx, id]);

  if (!d.data) {
    return (
      <>
        <p class="crumbs">
          <Link to="/organizations">← Organizations</Link>
        </p>
        {d.error ? (
          d.error.status === 404 && d.error.code !== 'route_not_found' ? (
            <div class="card">
              <h1>Organization not found</h1>
              <p class="muted">There is no organization “{id}” for this reseller.</p>
            </div>
          ) : (
            <ErrorBox error={d.error} retry={d.reload} what="Organization" />
          )
        ) : (
          <Loading what="Loading organization…" />
        )}
      </>
    );
  }
  const o = d.data;
  const pts = o.usage.series[0]?.points ?? [];
  const monthMinutes = o.models.reduce((s, m) => s + m.minutes, 0);
  const sub = o.subscription;
  return (
    <>
      <p class="crumbs">
        <Link to="/organizations">← Organizations</Link>
      </p>
      <div class="org-head">
        <h1 class="page-title" id="org-name">
          {o.name}
        </h1>
        <Badge kind={o.status}>{o.status}</Badge>
        <span class="muted mono">{o.id}</span>
        <span class="muted">· plan {o.plan} · created {fmtDate(o.created_at, ctx.tz)}</span>
      </div>
      <div class="grid-2">
        <Section title="Subscription" id="subscription">
          {sub ? (
            <dl class="facts">
              <dt>Plan</dt>
              <dd>{sub.plan}</dd>
              <dt>Status</dt>
              <dd>
                <Badge kind={sub.status}>{sub.status}</Badge>
              </dd>
              <dt>Price</dt>
              <dd>{sub.price_minor && sub.currency ? `${fmtMoney(sub.price_minor, sub.currency)} / period` : '—'}</dd>
              <dt>Quota</dt>
              <dd>{sub.quota_minutes ? fmtMinutes(sub.quota_minutes) : 'none'}</dd>
              <dt>Used this month</dt>
              <dd>
                {fmtMinutes(monthMinutes)}
                {sub.quota_minutes ? ` (${Math.round((monthMinutes / sub.quota_minutes) * 100)}%)` : ''}
              </dd>
              <dt>Period</dt>
              <dd>
                {fmtDate(sub.period_start, ctx.tz)} – {fmtDate(sub.period_end, ctx.tz)}
              </dd>
            </dl>
          ) : (
            <Empty>No subscription.</Empty>
          )}
        </Section>
        <Section title={`Users (${o.users.length})`} id="users">
          {o.users.length === 0 ? (
            <Empty>No active users.</Empty>
          ) : (
            <div class="table-wrap short">
              <table class="table compact">
                <thead>
                  <tr>
                    <th scope="col">User</th>
                    <th scope="col">Role</th>
                    <th scope="col">Added</th>
                  </tr>
                </thead>
                <tbody>
                  {o.users.map((u) => (
                    <tr key={u.user_id}>
                      <td class="mono">{u.user_id}</td>
                      <td>{u.role}</td>
                      <td>{fmtDate(u.added_at, ctx.tz)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Section>
      </div>
      <Section title="Usage, last 30 days" id="org-usage">
        <ChartView
          type="bar"
          stacked
          label={`Daily minutes of ${o.name} over the last 30 days`}
          labels={pts.map((p) => fmtPeriod(p.period, 'day'))}
          datasets={[{ label: 'Minutes', data: pts.map((p) => Number(p.minutes ?? 0)) }]}
          format={fmtMinutes}
          height={220}
        />
        <p class="muted small" id="org-usage-summary">
          {fmtInt(pts.reduce((s, p) => s + Number(p.jobs_completed ?? 0), 0))} jobs completed, {fmtInt(pts.reduce((s, p) => s + Number(p.jobs_failed ?? 0), 0))} failed, {fmtMinutes(pts.reduce((s, p) => s + Number(p.minutes ?? 0), 0))} in 30 days.
        </p>
      </Section>
      <div class="grid-2">
        <BreakdownView title="Models this month" id="org-models" rows={o.models} />
        <BreakdownView title="Languages this month" id="org-languages" rows={o.languages} />
      </div>
      <AlertHistory alerts={o.alerts ?? []} />
      <div class="card">
        <ExportBar
          intro={`Reports for ${o.name}, last 30 days:`}
          items={[
            { id: 'export-org-usage', label: 'Usage report (CSV)', path: '/v1/reports/usage.csv', params: { org: o.id, group_by: 'organization', granularity: 'day', from: o.usage.from.slice(0, 10) }, fallback: 'usage.csv' },
            { id: 'export-org-activity', label: 'Activity log (CSV)', path: '/v1/reports/activity.csv', params: { org: o.id, from: o.usage.from.slice(0, 10) }, fallback: 'activity.csv' },
          ]}
        />
      </div>
    </>
  );
}
