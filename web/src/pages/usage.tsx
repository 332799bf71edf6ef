import { api, type OrgList, type Usage, type UsageSeries } from '../api';
import { ExportBar } from '../exports';
import { ChartView } from '../charts';
import { fmtDate, fmtMetric, fmtPeriod, metricLabels } from '../format';
import { TimeZoneSelect } from '../tz';
import { Panel, Section, useApp, useAsync } from '../ui';

const TOP = 8;
const dims: Record<string, string> = { '': 'Nothing (total)', organization: 'Organization', model: 'Model', language: 'Language' };

/** YYYY-MM-DD of an instant in tz. */
function dayIn(d: Date, tz: string): string {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  } catch {
    return d.toISOString().slice(0, 10);
  }
}

function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function UsagePage() {
  const { ctx, loc, setQuery, me } = useApp();
  const g = loc.query.get('granularity') || 'day';
  const from = loc.query.get('from') ?? '';
  const to = loc.query.get('to') ?? ''; // inclusive in the page, exclusive in the API
  const group = loc.query.get('group') ?? '';
  const metric = loc.query.get('metric') || 'minutes';
  const style = loc.query.get('chart') || 'bar';
  const share = loc.query.get('share') || (group || 'model');
  const org = loc.query.get('org') ?? '';
  const plan = loc.query.get('plan') ?? '';

  const filters = { from, to: to ? addDays(to, 1) : '', org, plan };
  const orgs = useAsync(() => api<OrgList>(ctx, '/v1/organizations', { page_size: 200 }), [ctx.key, ctx.reseller]);
  const names: Record<string, string> = {};
  for (const o of orgs.data?.organizations ?? []) names[o.id] = o.name;

  const usage = useAsync(
    () => api<Usage>(ctx, '/v1/usage', { ...filters, granularity: g, group_by: group, metrics: metric, top: group ? TOP : undefined }),
    [ctx, g, from, to, group, metric, org, plan],
  );
  const shares = useAsync(
    () => api<Usage>(ctx, '/v1/usage', { ...filters, granularity: g, group_by: share, metrics: metric, top: TOP }),
    [ctx, g, from, to, share, metric, org, plan],
  );

  const label = (s: UsageSeries, dim: string): string => {
    if (s.others) return 'Others';
    if (!dim) return metricLabels[metric] ?? metric;
    const v = s.group[dim] ?? '';
    return dim === 'organization' ? names[v] ?? v : v || '(none)';
  };
  const fmt = (v: number) => fmtMetric(metric, v);
  const today = dayIn(new Date(), ctx.tz);

  const presets: { label: string; from: string; to: string; g?: string }[] = [
    { label: 'Last 30 days', from: '', to: '' },
    { label: 'Last 7 days', from: addDays(today, -6), to: today },
    { label: 'This month', from: `${today.slice(0, 8)}01`, to: today },
    { label: 'Last 12 months', from: `${addDays(`${today.slice(0, 8)}01`, -335).slice(0, 8)}01`, to: today, g: 'month' },
  ];

  return (
    <>
      <h1 class="page-title">Usage analytics</h1>
      <div class="card">
        <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Usage filters">
          <label>
            <span>From</span>
            <input id="usage-from" type="date" value={from} max={to || undefined} onChange={(e) => setQuery({ from: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            <span>To (inclusive)</span>
            <input id="usage-to" type="date" value={to} min={from || undefined} onChange={(e) => setQuery({ to: (e.target as HTMLInputElement).value })} />
          </label>
          <TimeZoneSelect id="usage-tz" value={ctx.tz} onChange={(z) => setQuery({ tz: z === 'UTC' ? '' : z })} />
          <label>
            <span>Period</span>
            <select id="usage-granularity" value={g} onChange={(e) => setQuery({ granularity: (e.target as HTMLSelectElement).value })}>
              <option value="hour">Hour</option>
              <option value="day">Day</option>
              <option value="week">Week</option>
              <option value="month">Month</option>
            </select>
          </label>
          <label>
            <span>Break down by</span>
            <select id="usage-group" value={group} onChange={(e) => setQuery({ group: (e.target as HTMLSelectElement).value })}>
              {Object.entries(dims).map(([k, v]) => (
                <option value={k} key={k}>
                  {v}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Metric</span>
            <select id="usage-metric" value={metric} onChange={(e) => setQuery({ metric: (e.target as HTMLSelectElement).value })}>
              {Object.entries(metricLabels).map(([k, v]) => (
                <option value={k} key={k}>
                  {v}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Chart</span>
            <select id="usage-chart" value={style} onChange={(e) => setQuery({ chart: (e.target as HTMLSelectElement).value })}>
              <option value="bar">Stacked bars</option>
              <option value="line">Lines</option>
            </select>
          </label>
          <label>
            <span>Organization</span>
            <select id="usage-org" value={org} onChange={(e) => setQuery({ org: (e.target as HTMLSelectElement).value })}>
              <option value="">All organizations</option>
              {(orgs.data?.organizations ?? []).map((o) => (
                <option value={o.id} key={o.id}>
                  {o.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Plan</span>
            <select id="usage-plan" value={plan} onChange={(e) => setQuery({ plan: (e.target as HTMLSelectElement).value })}>
              <option value="">All plans</option>
              {[...new Set((orgs.data?.organizations ?? []).map((o) => o.plan))].sort().map((p) => (
                <option value={p} key={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
        </form>
        <div class="presets" role="group" aria-label="Date range presets">
          {presets.map((p) => (
            <button type="button" class="btn small" key={p.label} onClick={() => setQuery({ from: p.from, to: p.to, ...(p.g ? { granularity: p.g } : {}) })}>
              {p.label}
            </button>
          ))}
        </div>
        <ExportBar
          items={[
            { id: 'export-usage', label: 'Usage report (CSV)', path: '/v1/reports/usage.csv', params: { ...filters, granularity: g, group_by: group || 'organization' }, fallback: 'usage.csv' },
            { id: 'export-activity', label: 'Activity log (CSV)', path: '/v1/reports/activity.csv', params: { from: filters.from, to: filters.to, org }, fallback: 'activity.csv' },
            ...(me.revenue ? [{ id: 'export-financial', label: 'Financial report (CSV)', path: '/v1/reports/financial.csv', params: { from: filters.from, to: filters.to }, fallback: 'financial.csv' }] : []),
          ]}
        />
      </div>

      <Section title={`${metricLabels[metric] ?? metric} by ${g}${group ? ` and ${dims[group].toLowerCase()}` : ''}`} id="usage-time">
        <Panel a={usage} what="Usage" empty={(u) => u.series.length === 0}>
          {(u) => {
            const periods = u.series[0]?.points.map((p) => p.period) ?? [];
            return (
              <>
                <p class="muted small" id="usage-range">
                  {fmtDate(u.from, u.tz)} – {fmtDate(new Date(new Date(u.to).getTime() - 1).toISOString(), u.tz)} · {u.tz} · {periods.length} {u.granularity}s
                </p>
                <ChartView
                  type={style === 'line' ? 'line' : 'bar'}
                  stacked={style !== 'line'}
                  label={`${metricLabels[metric]} per ${u.granularity}`}
                  labels={periods.map((p) => fmtPeriod(p, u.granularity))}
                  datasets={u.series.map((s) => ({ label: label(s, group), data: s.points.map((p) => Number(p[metric] ?? 0)) }))}
                  format={fmt}
                />
                <div class="table-wrap tall">
                  <table class="table compact" id="usage-table">
                    <thead>
                      <tr>
                        <th scope="col">Period</th>
                        {u.series.map((s, i) => (
                          <th scope="col" class="num" key={i}>
                            {label(s, group)}
                          </th>
                        ))}
                      </tr>
                    </thead>
                    <tbody>
                      {periods.map((p, i) => (
                        <tr key={p} data-period={p}>
                          <th scope="row" class="period-cell">
                            {fmtPeriod(p, u.granularity)}
                            <span class="muted small mono"> {p.slice(0, 16).replace('T', ' ')}</span>
                          </th>
                          {u.series.map((s, j) => (
                            <td class="num" key={j}>
                              {fmt(Number(s.points[i]?.[metric] ?? 0))}
                            </td>
                          ))}
                        </tr>
                      ))}
                    </tbody>
                    <tfoot>
                      <tr>
                        <th scope="row">Total</th>
                        {u.series.map((s, j) => (
                          <td class="num" key={j}>
                            {fmtMetric(metric, s.totals[metric] as number | null)}
                          </td>
                        ))}
                      </tr>
                    </tfoot>
                  </table>
                </div>
              </>
            );
          }}
        </Panel>
      </Section>

      <Section
        title="Shares"
        id="usage-shares"
        actions={
          <label class="inline">
            <span>By</span>
            <select id="usage-share" value={share} onChange={(e) => setQuery({ share: (e.target as HTMLSelectElement).value })}>
              <option value="organization">Organization</option>
              <option value="model">Model</option>
              <option value="language">Language</option>
            </select>
          </label>
        }
      >
        <Panel a={shares} what="Shares" empty={(u) => u.series.length === 0}>
          {(u) => {
            const rows = u.series.map((s) => ({ name: label(s, share), v: Number(s.totals[metric] ?? 0) }));
            const total = rows.reduce((a, r) => a + r.v, 0);
            const additive = metric === 'minutes' || metric === 'jobs_completed' || metric === 'jobs_failed';
            return (
              <div class="grid-2 flat">
                <ChartView
                  type={additive ? 'doughnut' : 'bar'}
                  label={`${metricLabels[metric]} by ${share}`}
                  labels={rows.map((r) => r.name)}
                  datasets={[{ label: metricLabels[metric] ?? metric, data: rows.map((r) => r.v) }]}
                  format={fmt}
                  height={240}
                />
                <table class="table compact" id="share-table">
                  <thead>
                    <tr>
                      <th scope="col">{dims[share]}</th>
                      <th scope="col" class="num">
                        {metricLabels[metric]}
                      </th>
                      {additive && (
                        <th scope="col" class="num">
                          Share
                        </th>
                      )}
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((r) => (
                      <tr key={r.name}>
                        <td>{r.name}</td>
                        <td class="num">{fmt(r.v)}</td>
                        {additive && <td class="num">{total ? `${((r.v / total) * 100).toFixed(1)}%` : '—'}</td>}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            );
          }}
        </Panel>
      </Section>
    </>
  );
}
