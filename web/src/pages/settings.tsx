import { useState } from 'preact/hooks';
import { api, ApiError, apiSend, type Delivery, type Rule, type Webhook } from '../api';
import { fmtDateTime, fmtInt } from '../format';
import { Badge, Empty, ErrorBox, Panel, Section, useApp, useAsync } from '../ui';

type Msg = { ok: boolean; text: string } | null;

function settingInput(name: string, value: unknown, onChange: (v: unknown) => void, id: string) {
  if (typeof value === 'boolean') {
    return <input id={id} type="checkbox" checked={value} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />;
  }
  if (typeof value === 'number') {
    return <input id={id} type="number" step="any" value={String(value)} onInput={(e) => onChange(Number((e.target as HTMLInputElement).value))} />;
  }
  if (Array.isArray(value)) {
    return (
      <input
        id={id}
        value={value.join(', ')}
        onInput={(e) => {
          const parts = (e.target as HTMLInputElement).value.split(',').map((s) => s.trim()).filter(Boolean);
          onChange(value.length && typeof value[0] === 'number' ? parts.map(Number) : parts);
        }}
      />
    );
  }
  return <input id={id} name={name} value={value === null || value === undefined ? '' : String(value)} onInput={(e) => onChange((e.target as HTMLInputElement).value)} />;
}

const label = (k: string) => k.replace(/_/g, ' ');

function RuleRow({ rule, reload }: { rule: Rule; reload: () => void }) {
  const { ctx } = useApp();
  const [draft, setDraft] = useState<Record<string, unknown>>(rule.settings ?? {});
  const [editing, setEditing] = useState(false);
  const [msg, setMsg] = useState<Msg>(null);
  const [err, setErr] = useState<ApiError | null>(null);

  const run = async (what: string, f: () => Promise<unknown>) => {
    setMsg(null);
    setErr(null);
    try {
      const r = await f();
      setMsg({ ok: true, text: what + (r && typeof r === 'object' && 'alert_key' in r ? ` (${String((r as { alert_key: string }).alert_key)})` : '') });
      reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  const path = `/v1/alert-rules/${encodeURIComponent(rule.rule)}`;
  return (
    <li class="rule" data-rule={rule.rule}>
      <div class="rule-head">
        <strong>{label(rule.rule)}</strong>
        <Badge kind={rule.enabled ? 'active' : 'suspended'}>{rule.enabled ? 'enabled' : 'disabled'}</Badge>
        {rule.overridden && <Badge kind="info">customized</Badge>}
        <div class="actions">
          <button type="button" class="btn small" onClick={() => run(rule.enabled ? 'Disabled' : 'Enabled', () => apiSend(ctx, 'PUT', path, { enabled: !rule.enabled, settings: rule.settings }))}>
            {rule.enabled ? 'Disable' : 'Enable'}
          </button>
          {Object.keys(rule.settings ?? {}).length > 0 && (
            <button type="button" class="btn small" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              {editing ? 'Close' : 'Edit thresholds'}
            </button>
          )}
          <button type="button" class="btn small" onClick={() => run('Test alert sent', () => apiSend(ctx, 'POST', `${path}/test`))}>
            Test-fire
          </button>
          {rule.overridden && (
            <button type="button" class="btn small" onClick={() => run('Back to defaults', () => apiSend(ctx, 'DELETE', path))}>
              Reset to defaults
            </button>
          )}
        </div>
      </div>
      <div class="muted small">
        {Object.entries(rule.settings ?? {})
          .map(([k, v]) => `${label(k)}: ${Array.isArray(v) ? v.join(', ') : String(v)}`)
          .join(' · ') || 'no settings'}
      </div>
      {editing && (
        <form
          class="rule-form"
          onSubmit={(e) => {
            e.preventDefault();
            run('Saved', () => apiSend(ctx, 'PUT', path, { enabled: rule.enabled, settings: draft })).then(() => setEditing(false));
          }}
        >
          {Object.entries(draft).map(([k, v]) => {
            const id = `rule-${rule.rule}-${k}`;
            return (
              <label key={k} for={id}>
                <span>
                  {label(k)} <span class="muted small">(default {String(rule.defaults?.[k] ?? '—')})</span>
                </span>
                {settingInput(k, v, (nv) => setDraft({ ...draft, [k]: nv }), id)}
              </label>
            );
          })}
          <button type="submit" class="btn primary small">
            Save
          </button>
        </form>
      )}
      {msg && (
        <div class="ok small" role="status">
          {msg.text}
        </div>
      )}
      {err && <ErrorBox error={err} what={label(rule.rule)} />}
    </li>
  );
}

function Rules() {
  const { ctx } = useApp();
  const rules = useAsync(() => api<{ rules: Rule[] }>(ctx, '/v1/alert-rules'), [ctx]);
  return (
    <Section title="Alert rules" id="rules">
      <Panel a={rules} what="Alert rules" empty={(d) => d.rules.length === 0}>
        {(d) => (
          <ul class="rules">
            {d.rules.map((r) => (
              <RuleRow key={`${r.rule}:${JSON.stringify(r.settings)}:${r.enabled}`} rule={r} reload={rules.reload} />
            ))}
          </ul>
        )}
      </Panel>
    </Section>
  );
}

function WebhookForm({ initial, ruleNames, onDone, onCancel }: { initial?: Webhook; ruleNames: string[]; onDone: (w: Webhook) => void; onCancel?: () => void }) {
  const { ctx } = useApp();
  const [url, setUrl] = useState(initial?.url ?? '');
  const [rules, setRules] = useState<string[]>(initial?.rules ?? []);
  const [enabled, setEnabled] = useState(initial?.enabled ?? true);
  const [secret, setSecret] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const idp = initial ? `wh-${initial.id}` : 'wh-new';
  return (
    <form
      class="webhook-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setErr(null);
        const body: Record<string, unknown> = { url, rules, enabled };
        if (secret) body.secret = secret;
        try {
          const w = initial ? await apiSend<Webhook>(ctx, 'PUT', `/v1/webhooks/${encodeURIComponent(initial.id)}`, body) : await apiSend<Webhook>(ctx, 'POST', '/v1/webhooks', body);
          onDone(w);
        } catch (e2) {
          setErr(e2 as ApiError);
        }
      }}
    >
      <label for={`${idp}-url`}>
        <span>URL</span>
        <input id={`${idp}-url`} type="url" required placeholder="https://example.com/tally-hook" value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
      </label>
      <fieldset>
        <legend>Rules (none = all)</legend>
        {ruleNames.map((r) => (
          <label class="check" key={r}>
            <input type="checkbox" checked={rules.includes(r)} onChange={(e) => setRules((e.target as HTMLInputElement).checked ? [...rules, r] : rules.filter((x) => x !== r))} /> {label(r)}
          </label>
        ))}
      </fieldset>
      <label class="check">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.target as HTMLInputElement).checked)} /> Enabled
      </label>
      <label for={`${idp}-secret`}>
        <span>Signing secret {initial ? '(leave empty to keep)' : '(empty: generated)'}</span>
        <input id={`${idp}-secret`} type="password" autocomplete="off" value={secret} onInput={(e) => setSecret((e.target as HTMLInputElement).value)} />
      </label>
      <div class="actions">
        <button type="submit" class="btn primary small">
          {initial ? 'Save webhook' : 'Add webhook'}
        </button>
        {onCancel && (
          <button type="button" class="btn small" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
      {err && <ErrorBox error={err} what="Webhook" />}
    </form>
  );
}

function Deliveries({ id }: { id: string }) {
  const { ctx } = useApp();
  const d = useAsync(() => api<{ deliveries: Delivery[] }>(ctx, `/v1/webhooks/${encodeURIComponent(id)}/deliveries`), [ctx, id], 10_000);
  return (
    <Panel a={d} what="Deliveries" empty={(x) => x.deliveries.length === 0}>
      {(x) => (
        <table class="table compact">
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Alert</th>
              <th scope="col" class="num">Attempt</th>
              <th scope="col">Outcome</th>
              <th scope="col" class="num">HTTP</th>
              <th scope="col" class="num">Time</th>
            </tr>
          </thead>
          <tbody>
            {x.deliveries.map((dl) => (
              <tr key={`${dl.delivery_id}-${dl.attempt}`}>
                <td>{fmtDateTime(dl.at, ctx.tz)}</td>
                <td class="mono small">{dl.alert_key}</td>
                <td class="num">{dl.attempt}</td>
                <td>
                  <Badge kind={dl.outcome}>{dl.outcome}</Badge> {dl.error && <span class="muted small">{dl.error}</span>}
                </td>
                <td class="num">{dl.status_code || '—'}</td>
                <td class="num">{fmtInt(dl.duration_ms)} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function WebhookRow({ w, ruleNames, reload }: { w: Webhook; ruleNames: string[]; reload: () => void }) {
  const { ctx } = useApp();
  const [mode, setMode] = useState<'' | 'edit' | 'deliveries'>('');
  const [msg, setMsg] = useState<Msg>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const act = async (what: string, f: () => Promise<unknown>) => {
    setMsg(null);
    setErr(null);
    try {
      await f();
      setMsg({ ok: true, text: what });
      reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  return (
    <li class="webhook" data-webhook={w.id}>
      <div class="rule-head">
        <span class="mono">{w.url}</span>
        <Badge kind={w.enabled ? 'active' : 'suspended'}>{w.enabled ? 'enabled' : 'disabled'}</Badge>
        <div class="actions">
          <button type="button" class="btn small" aria-expanded={mode === 'edit'} onClick={() => setMode(mode === 'edit' ? '' : 'edit')}>
            Edit
          </button>
          <button type="button" class="btn small" onClick={() => act('Test sent', () => apiSend(ctx, 'POST', `/v1/webhooks/${encodeURIComponent(w.id)}/test`))}>
            Send test
          </button>
          <button type="button" class="btn small" aria-expanded={mode === 'deliveries'} onClick={() => setMode(mode === 'deliveries' ? '' : 'deliveries')}>
            Deliveries
          </button>
          <button
            type="button"
            class="btn small danger"
            onClick={() => {
              if (confirm(`Delete the webhook to ${w.url}?`)) act('Deleted', () => apiSend(ctx, 'DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`));
            }}
          >
            Delete
          </button>
        </div>
      </div>
      <div class="muted small">
        rules: {w.rules.length ? w.rules.map(label).join(', ') : 'all'} · secret {w.secret_hint ?? '—'} · updated {fmtDateTime(w.updated_at, ctx.tz)}
      </div>
      {mode === 'edit' && (
        <WebhookForm
          initial={w}
          ruleNames={ruleNames}
          onCancel={() => setMode('')}
          onDone={() => {
            setMode('');
            setMsg({ ok: true, text: 'Saved' });
            reload();
          }}
        />
      )}
      {mode === 'deliveries' && <Deliveries id={w.id} />}
      {msg && (
        <div class="ok small" role="status">
          {msg.text}
        </div>
      )}
      {err && <ErrorBox error={err} what="Webhook" />}
    </li>
  );
}

function Webhooks() {
  const { ctx } = useApp();
  const hooks = useAsync(() => api<{ webhooks: Webhook[] }>(ctx, '/v1/webhooks'), [ctx]);
  const rules = useAsync(() => api<{ rules: Rule[] }>(ctx, '/v1/alert-rules'), [ctx]);
  const ruleNames = rules.data?.rules.map((r) => r.rule) ?? [];
  const [adding, setAdding] = useState(false);
  const [created, setCreated] = useState<Webhook | null>(null);
  return (
    <Section
      title="Webhooks"
      id="webhooks"
      actions={
        <button type="button" class="btn small" aria-expanded={adding} onClick={() => setAdding(!adding)}>
          {adding ? 'Close' : 'Add webhook'}
        </button>
      }
    >
      {adding && (
        <WebhookForm
          ruleNames={ruleNames}
          onCancel={() => setAdding(false)}
          onDone={(w) => {
            setAdding(false);
            setCreated(w);
            hooks.reload();
          }}
        />
      )}
      {created?.secret && (
        <div class="notice" role="status">
          Webhook created. Its signing secret is shown only now: <code class="mono">{created.secret}</code>{' '}
          <button type="button" class="btn small" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      <Panel a={hooks} what="Webhooks">
        {(d) =>
          d.webhooks.length === 0 ? (
            <Empty>No webhooks yet: add one to receive alerts on your own systems (signed with HMAC-SHA256).</Empty>
          ) : (
            <ul class="rules">
              {d.webhooks.map((w) => (
                <WebhookRow key={`${w.id}:${w.updated_at}`} w={w} ruleNames={ruleNames} reload={hooks.reload} />
              ))}
            </ul>
          )
        }
      </Panel>
    </Section>
  );
}

export function SettingsPage() {
  const { me } = useApp();
  return (
    <>
      <h1 class="page-title">Settings</h1>
      <p class="muted">
        {me.role === 'operator' ? 'Operator key' : `Reseller ${me.reseller_id}`} · revenue {me.revenue ? 'visible' : 'hidden'}
      </p>
      <Rules />
      <Webhooks />
    </>
  );
}
