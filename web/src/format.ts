// Number, duration and date formatting. Locale is fixed (en-US grouping) so
// the page reads the same everywhere and tests can match text.

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function fmtInt(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return int.format(n);
}

export function fmtNum(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return dec1.format(n);
}

/** Minutes as "12 h 05 min" (or "45 min" under an hour), rounded to whole minutes. */
export function fmtMinutes(m: number | null | undefined): string {
  if (m === null || m === undefined || Number.isNaN(m)) return '—';
  const neg = m < 0;
  let total = Math.round(Math.abs(m));
  if (total === 0 && Math.abs(m) > 0) return neg ? '> -1 min' : '< 1 min';
  const h = Math.floor(total / 60);
  total -= h * 60;
  const s = h > 0 ? `${int.format(h)} h ${String(total).padStart(2, '0')} min` : `${total} min`;
  return neg ? '-' + s : s;
}

/** Seconds of media as "1 h 05 min" or "45 s" / "2 min 30 s". */
export function fmtSeconds(sec: number): string {
  if (sec < 60) return `${Math.round(sec)} s`;
  if (sec < 3600) {
    const m = Math.floor(sec / 60);
    const s = Math.round(sec - m * 60);
    return s ? `${m} min ${String(s).padStart(2, '0')} s` : `${m} min`;
  }
  return fmtMinutes(sec / 60);
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${int.format(ms)} ms`;
  return `${dec1.format(ms / 1000)} s`;
}

export function fmtPct(p: number | null | undefined): string {
  if (p === null || p === undefined) return '—';
  return `${dec1.format(p)}%`;
}

export function fmtMoney(minor: number, currency: string): string {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(minor / 100);
  } catch {
    return `${dec1.format(minor / 100)} ${currency}`;
  }
}

/** Formats a metric value by its kind. */
export function fmtMetric(metric: string, v: number | null | undefined): string {
  switch (metric) {
    case 'minutes':
      return fmtMinutes(v);
    case 'failure_rate':
      return v === null || v === undefined ? '—' : fmtPct(v * 100);
    case 'avg_processing_ms':
      return fmtMs(v);
    default:
      return fmtInt(v);
  }
}

export const metricLabels: Record<string, string> = {
  minutes: 'Minutes',
  jobs_completed: 'Jobs completed',
  jobs_failed: 'Jobs failed',
  failure_rate: 'Failure rate',
  distinct_users: 'Distinct users',
  avg_processing_ms: 'Avg processing time',
};

function dtf(tz: string, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-GB', { ...opts, timeZone: tz || 'UTC' });
  } catch {
    return new Intl.DateTimeFormat('en-GB', { ...opts, timeZone: 'UTC' });
  }
}

/** "20 Nov 2026, 11:30" in tz. */
export function fmtDateTime(iso: string | null | undefined, tz: string): string {
  if (!iso) return '—';
  return dtf(tz, { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
}

export function fmtDate(iso: string | null | undefined, tz: string): string {
  if (!iso) return '—';
  return dtf(tz, { day: 'numeric', month: 'short', year: 'numeric' }).format(new Date(iso));
}

/**
 * A period label as the API meant it: the period strings carry the zone's
 * offset, so the wall-clock part is read directly (no browser zone involved).
 */
export function fmtPeriod(period: string, granularity: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(period);
  if (!m) return period;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const [, y, mo, d, h, mi] = m;
  const mon = months[Number(mo) - 1];
  switch (granularity) {
    case 'month':
      return `${mon} ${y}`;
    case 'week':
      return `wk ${Number(d)} ${mon}`;
    case 'hour':
      return `${Number(d)} ${mon} ${h}:${mi}`;
    default:
      return `${Number(d)} ${mon}`;
  }
}

/** The calendar date (YYYY-MM-DD) of an API period string, as written. */
export function periodDate(period: string): string {
  return period.slice(0, 10);
}

export function changeText(m: { change: number; change_pct: number | null }, fmt: (n: number) => string): string {
  const sign = m.change > 0 ? '+' : m.change < 0 ? '−' : '±';
  const abs = fmt(Math.abs(m.change));
  const pct = m.change_pct === null ? 'new' : `${m.change_pct > 0 ? '+' : m.change_pct < 0 ? '−' : ''}${dec1.format(Math.abs(m.change_pct))}%`;
  return `${sign}${abs} (${pct})`;
}
