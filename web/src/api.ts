// The query API client: Bearer key from the browser session, the operator's
// reseller and the time zone added to every call, JSON errors turned into
// ApiError.

const KEY = 'tally.key';
const RESELLER = 'tally.reseller';

export function storedKey(): string {
  return sessionStorage.getItem(KEY) ?? '';
}

export function storeKey(key: string) {
  sessionStorage.setItem(KEY, key);
}

export function storedReseller(): string {
  return sessionStorage.getItem(RESELLER) ?? '';
}

export function storeReseller(r: string) {
  if (r) sessionStorage.setItem(RESELLER, r);
  else sessionStorage.removeItem(RESELLER);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(RESELLER);
}

/** An error answer of the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public param?: string,
  ) {
    super(message);
  }
}

export interface Ctx {
  key: string;
  /** The reseller an operator key reads; empty for a reseller key. */
  reseller: string;
  tz: string;
}

type Params = Record<string, string | number | boolean | undefined | null>;

export function buildURL(path: string, ctx: Ctx, params: Params = {}): string {
  const q = new URLSearchParams();
  if (ctx.reseller) q.set('reseller', ctx.reseller);
  if (ctx.tz) q.set('tz', ctx.tz);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: any = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: keep the status text
  }
  const e = body?.error ?? body;
  if (e && typeof e.message === 'string') {
    return new ApiError(res.status, e.code ?? 'error', e.message, e.param);
  }
  return new ApiError(res.status, 'http_' + res.status, `${res.status} ${res.statusText || 'error'}`);
}

async function send(method: string, url: string, key: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'network', `The query service cannot be reached (${(err as Error).message}).`);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function api<T>(ctx: Ctx, path: string, params?: Params): Promise<T> {
  const res = await send('GET', buildURL(path, ctx, params), ctx.key);
  return (await res.json()) as T;
}

export async function apiSend<T>(ctx: Ctx, method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, buildURL(path, ctx), ctx.key, body);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** The file name of a Content-Disposition header, or fallback. */
export function dispositionName(header: string | null, fallback: string): string {
  if (!header) return fallback;
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
  const m = /filename="?([^";]+)"?/i.exec(header);
  return m ? m[1].trim() : fallback;
}

/** Downloads a CSV report with the Bearer header and saves it via a Blob link. */
export async function download(ctx: Ctx, path: string, params: Params, fallback: string): Promise<string> {
  const res = await send('GET', buildURL(path, ctx, params), ctx.key);
  const name = dispositionName(res.headers.get('Content-Disposition'), fallback);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}

// ---- response shapes (query/openapi.yaml, plan2 contract) ----

export interface Me {
  role: 'reseller' | 'operator';
  reseller_id: string;
  revenue: boolean;
}

export interface Metric {
  value: number;
  previous: number;
  change: number;
  change_pct: number | null;
}

export interface Overview {
  reseller: string;
  tz: string;
  period: { from: string; to: string };
  previous_period: { from: string; to: string };
  organizations: Metric;
  active_subscriptions: Metric;
  users: Metric;
  usage_minutes: Metric;
  revenue?: (Metric & { currency: string })[];
}

export interface Job {
  org_id: string;
  org_name: string;
  job_id: string;
  user_id: string;
  status: string;
  model: string;
  language: string;
  media_duration_seconds: number;
  processing_ms: number;
  error_code?: string;
  created_at: string;
}

export interface OrgSummary {
  id: string;
  name: string;
  plan: string;
  status: string;
  users: number;
  usage_minutes: number;
  quota_minutes: number;
  quota_share: number | null;
  created_at: string;
}

export interface OrgList {
  organizations: OrgSummary[];
  period: { from: string; to: string };
  page: number;
  page_size: number;
  total: number;
}

export interface UsageSeries {
  group: Record<string, string>;
  others?: boolean;
  totals: Record<string, number | null>;
  points: ({ period: string } & Record<string, number | null | string>)[];
}

export interface Usage {
  tz: string;
  granularity: string;
  from: string;
  to: string;
  group_by: string[];
  metrics: string[];
  series: UsageSeries[];
}

export interface Breakdown {
  name: string;
  minutes: number;
  jobs_completed: number;
}

export interface Alert {
  alert_key: string;
  rule: string;
  org_id: string;
  org_name?: string;
  period?: string;
  threshold?: string;
  state: string;
  severity: string;
  title: string;
  details?: Record<string, unknown>;
  first_fired_at: string;
  last_seen_at?: string;
  resolved_at?: string | null;
  acknowledged_at?: string | null;
  acknowledged_by?: string | null;
}

export interface OrgDetail {
  id: string;
  name: string;
  plan: string;
  status: string;
  created_at: string;
  subscription: {
    plan: string;
    status: string;
    quota_minutes: number;
    price_minor?: number;
    currency?: string;
    period_start: string;
    period_end: string;
  } | null;
  users: { user_id: string; role: string; added_at: string }[];
  usage: Usage;
  models: Breakdown[];
  languages: Breakdown[];
  /** The organization's latest 50 alerts, newest first (items of /v1/alerts). */
  alerts: Alert[];
}

export interface Notification {
  id: string;
  kind: string;
  type: string;
  time: string;
  severity: string;
  title: string;
  body?: string;
  link?: string;
  org_id?: string;
  org_name?: string;
  state?: string;
  read?: boolean;
}

export interface Notifications {
  notifications: Notification[];
  next_cursor?: string;
  unread?: number;
}

export interface Rule {
  rule: string;
  enabled: boolean;
  settings: Record<string, unknown>;
  defaults: Record<string, unknown>;
  overridden: boolean;
}

export interface Webhook {
  id: string;
  url: string;
  rules: string[];
  enabled: boolean;
  updated_at: string;
  secret_hint?: string;
  secret?: string;
}

export interface Delivery {
  delivery_id: string;
  alert_key: string;
  attempt: number;
  outcome: string;
  status_code: number;
  error?: string;
  duration_ms: number;
  at: string;
}
