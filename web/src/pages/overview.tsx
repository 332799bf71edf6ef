import { api, type Job, type Metric, type Overview, type Usage } from '../api';
import { ChartView } from '../charts';
import { changeText, fmtDate, fmtDateTime, fmtInt, fmtMinutes, fmtMoney, fmtPeriod, fmtSeconds } from '../format';
import { Badge, Link, Panel, Section, useApp, useAsync } from '../ui';

/** How often the recent activity table refreshes. */
export const ACTIVITY_POLL_MS = 5000;

function Card({ id, title, value, m, fmt }: { id: string; title: string; value: string; m: Metric; fmt: (n: number) => string }) {
  const dir = m.change > 0 ? 'up' : m.change < 0 ? 'down' : 'flat';
  return (
    <div class="metric" data-metric={id}>
      <div class="metric-title">{title}</div>
      <div class="metric-value">{value}</div>
      <div class={`metric-change ${dir}`}>
        <span aria-hidden="true">{dir === 'up' ? '▲' : dir === 'down' ? '▼' : '■'}</span> {changeText(m, fmt)}
        <span class="muted"> vs previous period</span>
      </div>
    </div>
  );
}

export function OverviewPage() {
  const { ctx } = useApp();
  const ov = useAsync(() => api<Overview>(ctx, '/v1/overview'), [ctx]);
  const usage = useAsync(() => api<Usage>(ctx, '/v1/usage', { metrics: 'minutes,jobs_completed,jobs_failed', granularity: 'day' }), [ctx]);
  const act = useAsync(() => api<{ jobs: Job[] }>(ctx, '/v1/activity', { limit: 10 }), [ctx], ACTIVITY_POLL_MS);

  return (
    <>
      <h1 class="page-title">Overview</h1>
      <Panel a={ov} what="Key metrics">
        {(o) => (
          <>
            <p class="muted period">
              This month so far ({fmtDate(o.period.from, ctx.tz)} – {fmtDateTime(o.period.to, ctx.tz)}) against the same span of the previous month.
            </p>
            <div class="metrics" id="metrics">
              <Card id="organizations" title="Total organizations" value={fmtInt(o.organizations.value)} m={o.organizations} fmt={fmtInt} />
              <Card id="active_subscriptions" title="Active subscriptions" value={fmtInt(o.active_subscriptions.value)} m={o.active_subscriptions} fmt={fmtInt} />
              <Card id="users" title="Total users" value={fmtInt(o.users.value)} m={o.users} fmt={fmtInt} />
              <Card id="usage_minutes" title="This month's usage" value={fmtMinutes(o.usage_minutes.value)} m={o.usage_minutes} fmt={fmtMinutes} />
              {(o.revenue ?? []).map((r) => (
                <Card key={r.currency} id={`revenue_${r.currency}`} title={`Revenue (MRR, ${r.currency})`} value={fmtMoney(r.value, r.currency)} m={r} fmt={(n) => fmtMoney(n, r.currency)} />
              ))}
            </div>
          </>
        )}
      </Panel>

      <Section title="Usage, last 30 days" id="usage-30d" actions={<Link to="/usage" class="btn small">Usage analytics</Link>}>
        <Panel a={usage} what="Usage" empty={(u) => u.series.length === 0}>
          {(u) => {
            const pts = u.series[0]?.points ?? [];
            return (
              <ChartView
                type="bar"
                label="Minutes transcribed per day over the last 30 days"
                labels={pts.map((p) => fmtPeriod(p.period, u.granularity))}
                datasets={[{ label: 'Minutes', data: pts.map((p) => Number(p.minutes ?? 0)) }]}
                format={fmtMinutes}
                height={220}
              />
            );
          }}
        </Panel>
      </Section>

      <Section
        title="Recent activity"
        id="activity"
        actions={
          <span class="muted live" aria-live="off">
            <span class="dot" aria-hidden="true" /> live, every {ACTIVITY_POLL_MS / 1000} s
          </span>
        }
      >
        <Panel a={act} what="Recent activity" empty={(d) => d.jobs.length === 0}>
          {(d) => (
            <div class="table-wrap">
              <table class="table" id="activity-table">
                <thead>
                  <tr>
                    <th scope="col">Created</th>
                    <th scope="col">Organization</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">Duration</th>
                    <th scope="col">Model</th>
                    <th scope="col">Language</th>
                    <th scope="col">Job</th>
                  </tr>
                </thead>
                <tbody>
                  {d.jobs.map((j) => (
                    <tr key={`${j.org_id}/${j.job_id}`} data-job={j.job_id}>
                      <td>{fmtDateTime(j.created_at, ctx.tz)}</td>
                      <td>
                        <Link to={`/organizations/${encodeURIComponent(j.org_id)}`}>{j.org_name || j.org_id}</Link>
                      </td>
                      <td>
                        <Badge kind={j.status}>{j.status.replace('_', ' ')}</Badge>
                        {j.error_code && <span class="muted small"> {j.error_code}</span>}
                      </td>
                      <td class="num">{fmtSeconds(j.media_duration_seconds)}</td>
                      <td>{j.model}</td>
                      <td>{j.language}</td>
                      <td class="mono">{j.job_id}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Panel>
      </Section>
    </>
  );
}
