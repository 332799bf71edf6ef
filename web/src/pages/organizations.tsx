import { useEffect, useState } from 'preact/hooks';
import { api, type Ctx, type OrgList } from '../api';
import { fmtDate, fmtInt, fmtMinutes, fmtPct } from '../format';
import { Badge, Link, Panel, useApp, useAsync } from '../ui';

const PAGE_SIZE = 25;

const columns: { key: string; label: string; num?: boolean }[] = [
  { key: 'name', label: 'Organization' },
  { key: 'plan', label: 'Plan' },
  { key: 'status', label: 'Status' },
  { key: 'users', label: 'Users', num: true },
  { key: 'usage', label: 'Usage this month', num: true },
  { key: 'quota', label: 'Quota used', num: true },
  { key: 'created', label: 'Created' },
];

/** Every column is a sort of the API (query/openapi.yaml): one page per request. */
function loadOrgs(ctx: Ctx, f: { q: string; plan: string; status: string; sort: string; order: string; page: number }): Promise<OrgList> {
  return api<OrgList>(ctx, '/v1/organizations', { q: f.q, plan: f.plan, status: f.status, sort: f.sort, order: f.order, page: f.page, page_size: PAGE_SIZE });
}

export function OrganizationsPage() {
  const { ctx, loc, setQuery } = useApp();
  const q = loc.query.get('q') ?? '';
  const plan = loc.query.get('plan') ?? '';
  const status = loc.query.get('status') ?? '';
  const sortParam = loc.query.get('sort') || 'name';
  const sort = columns.some((c) => c.key === sortParam) ? sortParam : 'name';
  const order = loc.query.get('order') === 'desc' ? 'desc' : 'asc';
  const page = Math.max(1, Number(loc.query.get('page')) || 1);

  const [search, setSearch] = useState(q);
  useEffect(() => setSearch(q), [q]);
  useEffect(() => {
    if (search === q) return;
    const id = setTimeout(() => setQuery({ q: search, page: '' }, true), 250);
    return () => clearTimeout(id);
  }, [search]);

  const plans = useAsync(async () => {
    const r = await api<OrgList>(ctx, '/v1/organizations', { page_size: 200 });
    return [...new Set(r.organizations.map((o) => o.plan))].sort();
  }, [ctx.key, ctx.reseller]);
  const list = useAsync(() => loadOrgs(ctx, { q, plan, status, sort, order, page }), [ctx, q, plan, status, sort, order, page]);

  const sortBy = (key: string) => {
    const nextOrder = sort === key ? (order === 'asc' ? 'desc' : 'asc') : key === 'name' || key === 'plan' || key === 'status' ? 'asc' : 'desc';
    setQuery({ sort: key, order: nextOrder, page: '' });
  };

  return (
    <>
      <h1 class="page-title">Organizations</h1>
      <div class="card">
        <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
          <label>
            <span>Search</span>
            <input id="org-search" type="search" placeholder="Organization name" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            <span>Plan</span>
            <select id="org-plan" value={plan} onChange={(e) => setQuery({ plan: (e.target as HTMLSelectElement).value, page: '' })}>
              <option value="">All plans</option>
              {(plans.data ?? (plan ? [plan] : [])).map((p) => (
                <option value={p} key={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Status</span>
            <select id="org-status" value={status} onChange={(e) => setQuery({ status: (e.target as HTMLSelectElement).value, page: '' })}>
              <option value="">All statuses</option>
              <option value="active">Active</option>
              <option value="trial">Trial</option>
              <option value="suspended">Suspended</option>
            </select>
          </label>
          {(q || plan || status) && (
            <button type="button" class="btn" onClick={() => setQuery({ q: '', plan: '', status: '', page: '' })}>
              Clear filters
            </button>
          )}
        </form>

        <Panel a={list} what="Organizations">
          {(d) =>
            d.organizations.length === 0 ? (
              <div class="state empty">{q || plan || status ? 'No organization matches these filters.' : 'This reseller has no organizations yet.'}</div>
            ) : (
              <>
                <div class="table-wrap">
                  <table class="table" id="org-table">
                    <thead>
                      <tr>
                        {columns.map((c) => {
                          const active = sort === c.key;
                          return (
                            <th scope="col" class={c.num ? 'num' : ''} key={c.key} aria-sort={active ? (order === 'asc' ? 'ascending' : 'descending') : 'none'}>
                              <button type="button" class="sort" data-sort={c.key} onClick={() => sortBy(c.key)}>
                                {c.label}
                                <span class="arrow" aria-hidden="true">
                                  {active ? (order === 'asc' ? '▲' : '▼') : '↕'}
                                </span>
                              </button>
                            </th>
                          );
                        })}
                      </tr>
                    </thead>
                    <tbody>
                      {d.organizations.map((o) => (
                        <tr key={o.id} data-org={o.id}>
                          <td>
                            <Link to={`/organizations/${encodeURIComponent(o.id)}`} class="org-link">
                              {o.name}
                            </Link>
                            <div class="muted small mono">{o.id}</div>
                          </td>
                          <td>{o.plan}</td>
                          <td>
                            <Badge kind={o.status}>{o.status}</Badge>
                          </td>
                          <td class="num">{fmtInt(o.users)}</td>
                          <td class="num">{fmtMinutes(o.usage_minutes)}</td>
                          <td class="num">
                            {o.quota_share === null ? (
                              <span class="muted">no quota</span>
                            ) : (
                              <span class="quota" title={`${fmtInt(o.quota_minutes)} min quota`}>
                                <span class="bar" aria-hidden="true">
                                  <span style={{ width: `${Math.min(100, o.quota_share * 100)}%` }} class={o.quota_share >= 1 ? 'over' : o.quota_share >= 0.8 ? 'warn' : ''} />
                                </span>
                                {fmtPct(o.quota_share * 100)}
                              </span>
                            )}
                          </td>
                          <td>{fmtDate(o.created_at, ctx.tz)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                <nav class="pager" aria-label="Pages">
                  <span class="muted" id="org-range">
                    {fmtInt((d.page - 1) * d.page_size + 1)}–{fmtInt((d.page - 1) * d.page_size + d.organizations.length)} of {fmtInt(d.total)}
                  </span>
                  <button type="button" class="btn" id="org-prev" disabled={d.page <= 1} onClick={() => setQuery({ page: String(d.page - 1) })}>
                    ← Previous
                  </button>
                  <span>
                    Page {d.page} of {Math.max(1, Math.ceil(d.total / d.page_size))}
                  </span>
                  <button type="button" class="btn" id="org-next" disabled={d.page * d.page_size >= d.total} onClick={() => setQuery({ page: String(d.page + 1) })}>
                    Next →
                  </button>
                </nav>
              </>
            )
          }
        </Panel>
      </div>
    </>
  );
}
