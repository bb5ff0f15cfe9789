import {
  API,
  type Branch,
  checkToken,
  del,
  getJson,
  getText,
  HttpError,
  type KV,
  postJson,
  setToken,
  type Trans,
  token,
  whenUnauthorized,
} from './api.js';
import { badge, type Child, confirmDialog, empty, errorBox, h, mono, time } from './dom.js';
import { maskHeaders, showPayload } from './payload.js';
import { byLabel, parseProm, type Sample, sum } from './prom.js';

/** AdminBasePath, written into index.html by the server ('' for the root). */
const metaBase = document.querySelector('meta[name="dtx-base"]')?.getAttribute('content') ?? '';
const BASE = metaBase === 'PUBLIC-PATH-VARIABLE' ? '' : metaBase;
const STATUSES = ['prepared', 'submitted', 'aborting', 'succeed', 'failed'];
const TYPES = ['saga', 'msg', 'tcc', 'xa', 'workflow'];
const FINAL = new Set(['succeed', 'failed']);

const view = document.getElementById('view') as HTMLElement;
/** Stops the current view's timers when another view is shown. */
let leave: (() => void) | undefined;

function url(path: string): string {
  return `${BASE}/admin/${path}`;
}

/** The route below `<base>/admin/`: e.g. ['trans', gid]. */
function route(): string[] {
  let p = location.pathname;
  if (p.startsWith(BASE)) p = p.slice(BASE.length);
  p = p.replace(/^\/(admin\/?)?/, '');
  return p.split('/').filter(Boolean).map(decodeURIComponent);
}

export function go(path: string): void {
  history.pushState(null, '', url(path));
  void render();
}

function link(path: string, ...children: Child[]): HTMLAnchorElement {
  return h(
    'a',
    {
      href: url(path),
      onclick: (e: Event) => {
        const me = e as MouseEvent;
        if (me.ctrlKey || me.metaKey || me.shiftKey || me.button !== 0) return;
        e.preventDefault();
        go(path);
      },
    },
    ...children,
  );
}

function show(...children: Child[]): void {
  view.replaceChildren(h('div', {}, ...children));
}

async function render(): Promise<void> {
  leave?.();
  leave = undefined;
  const [page = 'overview', arg] = route();
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === page || (page === 'trans' && a.dataset.nav === 'transactions'));
  }
  (document.getElementById('logout') as HTMLElement).hidden = token() === null;
  try {
    if (page === 'transactions') await transactionsView();
    else if (page === 'trans' && arg) await transView(arg);
    else if (page === 'stuck') await stuckView();
    else if (page === 'topics') await topicsView();
    else if (page === 'server') await serverView();
    else await overviewView();
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) show(h('h1', {}, 'Log in'), errorBox(err));
    else show(errorBox(err));
  }
}

// ---- transactions list ----

function transTable(list: Trans[], withStuck = false): HTMLElement {
  if (list.length === 0) return empty('No transactions match.');
  return h(
    'table',
    { class: 'trans' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['GID', 'Type', 'Status', 'Created', 'Updated', 'Next retry', withStuck ? 'Why stuck' : 'Failures'].map((t) =>
          h('th', {}, t),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      list.map((t) =>
        h(
          'tr',
          { class: 'click', 'data-gid': t.gid, onclick: () => go(`trans/${encodeURIComponent(t.gid)}`) },
          h('td', {}, link(`trans/${encodeURIComponent(t.gid)}`, mono(t.gid))),
          h('td', {}, t.trans_type ?? '—'),
          h('td', {}, badge(t.status), t.stuck ? [' ', badge('stuck', 'stuck')] : null),
          h('td', {}, time(t.create_time)),
          h('td', {}, time(t.update_time)),
          h('td', {}, FINAL.has(t.status ?? '') ? h('span', { class: 'muted' }, '—') : time(t.next_cron_time)),
          h(
            'td',
            { class: withStuck ? 'why-stuck' : 'failures' },
            withStuck
              ? whyStuck(t)
              : t.failed_attempts
                ? h('span', { title: t.last_error ?? '' }, String(t.failed_attempts))
                : h('span', { class: 'muted' }, '—'),
          ),
        ),
      ),
    ),
  );
}

/** The stuck reason in words: `attempts` (Stuck.FailedAttempts reached) or `age` (Stuck.UnfinishedAfter passed). */
function whyStuck(t: Trans): Child {
  if (t.stuck_reason === 'attempts') {
    const n = t.failed_attempts ?? 0;
    return h('span', { title: t.last_error ?? '' }, `${n} failed attempt${n === 1 ? '' : 's'} in a row`);
  }
  if (t.stuck_reason === 'age') return 'unfinished for too long';
  return t.stuck_reason ?? '—';
}

function localInput(ms: string | null): string {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

async function transactionsView(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const select = (name: string, values: string[], label: string) =>
    h(
      'label',
      {},
      label,
      h(
        'select',
        { name },
        h('option', { value: '' }, 'any'),
        values.map((v) => h('option', { value: v, selected: q.get(name) === v }, v)),
      ),
    );
  const form = h(
    'form',
    { class: 'filters' },
    select('status', STATUSES, 'Status'),
    select('transType', TYPES, 'Type'),
    h(
      'label',
      {},
      'GID prefix',
      h('input', { name: 'gidPrefix', value: q.get('gidPrefix') ?? '', placeholder: 'e.g. order-' }),
    ),
    h(
      'label',
      {},
      'Created from',
      h('input', { name: 'from', type: 'datetime-local', value: localInput(q.get('createTimeStart')) }),
    ),
    h(
      'label',
      {},
      'Created to',
      h('input', { name: 'to', type: 'datetime-local', value: localInput(q.get('createTimeEnd')) }),
    ),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'),
    h('button', { type: 'button', onclick: () => go('transactions') }, 'Reset'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const next = new URLSearchParams();
    for (const k of ['status', 'transType', 'gidPrefix']) {
      const v = String(f.get(k) ?? '').trim();
      if (v) next.set(k, v);
    }
    const from = String(f.get('from') ?? '');
    const to = String(f.get('to') ?? '');
    if (from) next.set('createTimeStart', String(new Date(from).getTime()));
    if (to) next.set('createTimeEnd', String(new Date(to).getTime()));
    go(`transactions${next.size ? `?${next}` : ''}`);
  });
  show(h('h1', {}, 'Transactions'), form, h('p', { class: 'muted' }, 'Loading…'));
  const params = {
    status: q.get('status') ?? undefined,
    transType: q.get('transType') ?? undefined,
    gidPrefix: q.get('gidPrefix') ?? undefined,
    createTimeStart: q.get('createTimeStart') ?? undefined,
    createTimeEnd: q.get('createTimeEnd') ?? undefined,
    position: q.get('position') ?? undefined,
    limit: '50',
  };
  let page: { transactions: Trans[] | null; next_position: string };
  try {
    page = await getJson(`${API}/all`, params);
  } catch (err) {
    show(h('h1', {}, 'Transactions'), form, errorBox(err));
    return;
  }
  let list = page.transactions ?? [];
  // a server without the gidPrefix filter answers every gid: keep the prefix's promise on this page at least
  if (params.gidPrefix) list = list.filter((t) => t.gid.startsWith(params.gidPrefix as string));
  const pageQ = (position: string | undefined) => {
    const n = new URLSearchParams(q);
    if (position) n.set('position', position);
    else n.delete('position');
    return `transactions?${n}`;
  };
  show(
    h('h1', {}, 'Transactions'),
    form,
    transTable(list),
    h(
      'div',
      { class: 'pager' },
      q.get('position') ? h('button', { type: 'button', onclick: () => go(pageQ(undefined)) }, '« First page') : null,
      page.next_position
        ? h('button', { type: 'button', class: 'next', onclick: () => go(pageQ(page.next_position)) }, 'Next page »')
        : h('span', { class: 'muted' }, 'Last page'),
    ),
  );
}

// ---- transaction detail ----

function kv(rows: [string, Child][]): HTMLElement {
  return h(
    'dl',
    { class: 'kv' },
    rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** The order ops run in within one branch id (others after these, by name). */
const OP_ORDER = ['try', 'action', 'confirm', 'cancel', 'compensate', 'rollback', 'msg'];

/** `600` → `10 min`, `5400` → `1 h 30 min`, `45` → `45 s`. */
function durationText(seconds: number): string {
  const parts: string[] = [];
  const d = Math.floor(seconds / 86400);
  const hr = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d) parts.push(`${d} d`);
  if (hr) parts.push(`${hr} h`);
  if (m) parts.push(`${m} min`);
  if (s || !parts.length) parts.push(`${s} s`);
  return parts.join(' ');
}

/** dtx: a saga step's delayed compensation (`compensate_delay`): how long, and while it waits, until when. */
interface CompensateDelay {
  seconds: number;
  /** RFC 3339, while the saga is aborting and the compensation has not run. */
  due?: string;
}

/** A workflow's result (base64): pretty JSON when it parses, else hex, as a branch payload. */
function resultOf(b64: string): HTMLElement {
  const p = showPayload(b64);
  return h('pre', { class: `payload workflow-result ${p.kind}` }, p.text);
}

function opRow(b: Branch, delay?: CompensateDelay): HTMLElement {
  const payload = b.bin_data ? showPayload(b.bin_data) : undefined;
  const when: Child[] = [];
  const at = (label: string, iso: string | undefined | null) => {
    if (iso) when.push(h('span', {}, `${label} `, time(iso)));
  };
  at('created', b.create_time);
  at('updated', b.update_time);
  at('finished', b.finish_time);
  at('last attempt', b.last_attempt_time);
  const waiting = delay?.due !== undefined && b.status === 'prepared';
  if (delay && waiting) when.push(h('span', { class: 'compensate-due' }, 'due ', time(delay.due)));
  return h(
    'div',
    { class: `op-row ${b.status ?? ''}`, 'data-branch': `${b.branch_id ?? ''}/${b.op ?? ''}` },
    h(
      'div',
      { class: 'branch-head' },
      h('span', { class: 'op' }, b.op ?? '—'),
      badge(b.status),
      b.attempts !== undefined
        ? h('span', { class: 'attempts' }, `${b.attempts} attempt${b.attempts === 1 ? '' : 's'}`)
        : null,
      b.last_result ? h('span', { class: 'muted last-result' }, 'last: ', badge(b.last_result)) : null,
      delay
        ? h(
            'span',
            { class: 'compensate-delay', title: `compensate_delay: ${delay.seconds} s after the rollback began` },
            `delayed ${durationText(delay.seconds)}`,
          )
        : null,
      waiting ? badge('waiting', 'waiting') : null,
      h('span', { class: 'mono url' }, b.url ?? ''),
    ),
    h('div', { class: 'when' }, when),
    b.last_error ? h('div', { class: 'lasterr' }, b.last_error) : null,
    payload
      ? h(
          'details',
          {},
          h('summary', {}, payload.kind === 'json' ? 'Payload (JSON)' : 'Payload (hex)'),
          h('pre', { class: `payload ${payload.kind}` }, payload.text),
        )
      : null,
  );
}

/**
 * The branches grouped by branch id (a step), each step's ops in the order they run. For a saga with
 * `compensate_delays`, the compensation of the i-th step (rows come step by step) shows its delay and due time.
 */
function timeline(branches: Branch[], t?: Trans): HTMLElement {
  const steps = new Map<string, Branch[]>();
  for (const b of branches) {
    const id = b.branch_id ?? '';
    steps.set(id, [...(steps.get(id) ?? []), b]);
  }
  const rank = (op: string | undefined) => {
    const i = OP_ORDER.indexOf(op ?? '');
    return i < 0 ? OP_ORDER.length : i;
  };
  return h(
    'ol',
    { class: 'timeline' },
    [...steps].map(([id, ops], i) => {
      ops.sort((a, b) => rank(a.op) - rank(b.op));
      const seconds = t?.trans_type === 'saga' ? (t.compensate_delays?.[i] ?? 0) : 0;
      const delay: CompensateDelay | undefined =
        seconds > 0 ? { seconds, due: t?.compensate_due?.[i] ?? undefined } : undefined;
      const worst = ops.some((o) => o.status === 'failed')
        ? 'failed'
        : ops.every((o) => o.status === 'succeed')
          ? 'succeed'
          : 'prepared';
      return h(
        'li',
        { class: `step ${worst}`, 'data-step': id },
        h(
          'div',
          { class: 'panel' },
          h('div', { class: 'step-title' }, 'Branch ', h('span', { class: 'mono' }, id || '—')),
          ops.map((o) => opRow(o, o.op === 'compensate' ? delay : undefined)),
        ),
      );
    }),
  );
}

async function transView(gid: string): Promise<void> {
  show(h('p', { class: 'muted' }, 'Loading…'));
  const r = await getJson<{ transaction: Trans | null; branches: Branch[] }>(`${API}/query`, { gid });
  const t = r.transaction;
  if (!t) {
    show(h('h1', {}, mono(gid)), empty('No transaction with this gid.'), link('transactions', '« All transactions'));
    return;
  }
  const act = async (title: string, what: string, label: string, path: string) => {
    if (!(await confirmDialog(title, what, label))) return;
    try {
      await postJson(`${API}/${path}`, { gid });
      await render();
    } catch (err) {
      view.prepend(errorBox(err));
    }
  };
  const open = !FINAL.has(t.status ?? '');
  const headers = t.branch_headers ? maskHeaders(t.branch_headers) : [];
  show(
    h('p', {}, link('transactions', '« Transactions')),
    h(
      'h1',
      {},
      h('span', { class: 'mono gid' }, t.gid),
      badge(t.status),
      t.stuck ? badge(`stuck${t.stuck_reason ? ` (${t.stuck_reason})` : ''}`, 'stuck') : null,
      h(
        'span',
        { class: 'actions' },
        open
          ? h(
              'button',
              {
                type: 'button',
                class: 'retry',
                onclick: () =>
                  act('Retry now?', `The next attempt of ${t.gid} is scheduled now.`, 'Retry now', 'resetNextCronTime'),
              },
              'Retry now',
            )
          : null,
        open
          ? h(
              'button',
              {
                type: 'button',
                class: 'danger force-stop',
                onclick: () =>
                  act(
                    'Force stop?',
                    `${t.gid} is marked failed without running any more branches or compensations. This cannot be undone.`,
                    'Force stop',
                    'forceStop',
                  ),
              },
              'Force stop',
            )
          : null,
      ),
    ),
    h(
      'div',
      { class: 'grid2' },
      h(
        'div',
        { class: 'panel' },
        kv([
          ['Type', t.trans_type],
          ['Protocol', t.protocol],
          ['Created', time(t.create_time)],
          ['Updated', time(t.update_time)],
          ['Finished', t.finish_time ? time(t.finish_time) : undefined],
          ['Rolled back', t.rollback_time ? time(t.rollback_time) : undefined],
          ['Next retry', open ? time(t.next_cron_time) : undefined],
          ['Retry interval', t.next_cron_interval ? `${t.next_cron_interval} s` : undefined],
        ]),
      ),
      h(
        'div',
        { class: 'panel' },
        kv([
          [
            'Rollback reason',
            t.rollback_reason ? h('div', { class: 'lasterr rollback-reason' }, t.rollback_reason) : undefined,
          ],
          ['Result', t.result ? resultOf(t.result) : undefined],
          ['Failed attempts', t.failed_attempts ? String(t.failed_attempts) : undefined],
          ['Last error', t.last_error ? h('div', { class: 'lasterr' }, t.last_error) : undefined],
          ['Wait result', t.wait_result ? 'yes' : undefined],
          ['Timeout to fail', t.timeout_to_fail ? `${t.timeout_to_fail} s` : undefined],
          ['Retry limit', t.retry_limit ? String(t.retry_limit) : undefined],
          ['Custom data', t.custom_data ? mono(t.custom_data) : undefined],
          [
            'Branch headers',
            headers.length
              ? h(
                  'div',
                  {},
                  headers.map(([k, v]) => h('div', { class: 'mono' }, `${k}: ${v}`)),
                )
              : undefined,
          ],
        ]),
        !t.rollback_reason && !t.failed_attempts && !t.last_error && !headers.length
          ? h(
              'p',
              { class: 'muted' },
              t.status === 'succeed' ? 'No errors recorded.' : 'No rollback reason or attempt error reported.',
            )
          : null,
      ),
    ),
    h('h2', {}, `Branches (${r.branches.length})`),
    r.branches.length ? timeline(r.branches, t) : empty('No branches yet.'),
  );
}

// ---- stuck ----

async function stuckView(): Promise<void> {
  const q = new URLSearchParams(location.search);
  show(h('h1', {}, 'Stuck transactions'), h('p', { class: 'muted' }, 'Loading…'));
  let page: { transactions: Trans[] | null; next_position: string };
  try {
    page = await getJson(`${API}/stuck`, { position: q.get('position') ?? undefined, limit: '50' });
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) {
      show(
        h('h1', {}, 'Stuck transactions'),
        h('div', { class: 'notice' }, 'This server does not list stuck transactions (no /api/dtmsvr/stuck).'),
      );
      return;
    }
    throw err;
  }
  const list = page.transactions ?? [];
  show(
    h('h1', {}, 'Stuck transactions'),
    list.length ? transTable(list, true) : empty('Nothing is stuck.'),
    page.next_position
      ? h(
          'div',
          { class: 'pager' },
          h('button', { type: 'button', onclick: () => go(`stuck?position=${page.next_position}`) }, 'Next page »'),
        )
      : null,
  );
}

// ---- topics ----

async function topicsView(): Promise<void> {
  const r = await getJson<{ kv: KV[]; next_position: string }>(`${API}/scanKV`, { cat: 'topics', limit: '1000' });
  const run = async (f: () => Promise<unknown>) => {
    try {
      await f();
      await topicsView();
    } catch (err) {
      view.prepend(errorBox(err));
    }
  };
  const form = h(
    'form',
    { class: 'filters subscribe' },
    h('label', {}, 'Topic', h('input', { name: 'topic', required: true, placeholder: 'orders' })),
    h(
      'label',
      {},
      'Subscriber URL',
      h('input', { name: 'url', required: true, size: 40, placeholder: 'http://svc/api/on-order' }),
    ),
    h('label', {}, 'Remark', h('input', { name: 'remark' })),
    h('button', { type: 'submit', class: 'primary' }, 'Subscribe'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const p = new URLSearchParams({
      topic: String(f.get('topic')),
      url: String(f.get('url')),
      remark: String(f.get('remark') ?? ''),
    });
    void run(() => getJson(`${API}/subscribe?${p}`));
  });
  const topics = r.kv.map((k) => {
    let subs: { url: string; remark?: string }[] = [];
    try {
      subs = JSON.parse(k.v);
    } catch {}
    return { topic: k.k, subs, version: k.version };
  });
  show(
    h('h1', {}, 'Topics'),
    form,
    topics.length === 0
      ? empty('No topics. Subscribe a URL to a topic above to create one.')
      : topics.map((t) =>
          h(
            'div',
            { class: 'panel topic', 'data-topic': t.topic, style: 'margin-bottom:12px' },
            h(
              'div',
              { class: 'branch-head' },
              h('strong', { class: 'mono' }, t.topic),
              h('span', { class: 'muted' }, `version ${t.version}`),
              h(
                'span',
                { class: 'actions' },
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'danger delete-topic',
                    onclick: async () => {
                      if (
                        await confirmDialog(
                          'Delete topic?',
                          `Topic ${t.topic} and its subscribers are deleted.`,
                          'Delete',
                        )
                      )
                        void run(() => del(`${API}/topic/${encodeURIComponent(t.topic)}`));
                    },
                  },
                  'Delete topic',
                ),
              ),
            ),
            t.subs.length === 0
              ? h('p', { class: 'muted' }, 'No subscribers.')
              : h(
                  'table',
                  {},
                  h('thead', {}, h('tr', {}, h('th', {}, 'Subscriber URL'), h('th', {}, 'Remark'), h('th', {}, ''))),
                  h(
                    'tbody',
                    {},
                    t.subs.map((s) =>
                      h(
                        'tr',
                        { 'data-url': s.url },
                        h('td', {}, mono(s.url)),
                        h('td', {}, s.remark || h('span', { class: 'muted' }, '—')),
                        h(
                          'td',
                          {},
                          h(
                            'button',
                            {
                              type: 'button',
                              class: 'unsubscribe',
                              onclick: async () => {
                                if (
                                  await confirmDialog(
                                    'Unsubscribe?',
                                    `${s.url} stops receiving ${t.topic}.`,
                                    'Unsubscribe',
                                  )
                                )
                                  void run(() =>
                                    getJson(
                                      `${API}/unsubscribe?${new URLSearchParams({ topic: t.topic, url: s.url })}`,
                                    ),
                                  );
                              },
                            },
                            'Unsubscribe',
                          ),
                        ),
                      ),
                    ),
                  ),
                ),
          ),
        ),
  );
}

// ---- live overview ----

const POLL_MS = 3000;

function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function card(key: string, value: string, sub = '', bad = false): HTMLElement {
  return h(
    'div',
    { class: 'card', 'data-card': key },
    h('div', { class: 'k' }, key),
    h('div', { class: `v${bad ? ' bad' : ''}` }, value),
    h('div', { class: 'sub' }, sub),
  );
}

async function overviewView(): Promise<void> {
  let prev: { at: number; finished?: number; failed?: number; failures?: number } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  leave = () => {
    stopped = true;
    clearTimeout(timer);
  };
  show(h('h1', {}, 'Overview'), h('p', { class: 'muted' }, 'Loading metrics…'));
  const tick = async () => {
    let samples: Sample[];
    try {
      samples = parseProm(await getText('/api/metrics'));
    } catch (err) {
      if (stopped) return;
      show(
        h('h1', {}, 'Overview'),
        err instanceof HttpError && err.status === 404
          ? h('div', { class: 'notice' }, 'This server exposes no metrics (/api/metrics is a 404).')
          : errorBox(err),
      );
      if (!(err instanceof HttpError && (err.status === 404 || err.status === 401))) timer = setTimeout(tick, POLL_MS);
      return;
    }
    if (stopped) return;
    const now = Date.now();
    const finished = sum(samples, 'dtx_transactions_finished_total');
    const failed = sum(samples, 'dtx_transactions_finished_total', (l) => l.outcome === 'failed');
    const failures = sum(samples, 'dtx_branch_failures_total');
    const rate = (cur: number | undefined, old: number | undefined) =>
      prev && cur !== undefined && old !== undefined ? Math.max(0, (cur - old) / ((now - prev.at) / 1000)) : undefined;
    const waiting = prev === undefined ? 'measuring…' : 'per second';
    const unfinished = byLabel(samples, 'dtx_unfinished_transactions', 'status');
    const stuck = sum(samples, 'dtx_stuck_transactions');
    const oldest = sum(samples, 'dtx_oldest_unfinished_age_seconds');
    const lag = sum(samples, 'dtx_cron_lag_seconds');
    const finishedRate = rate(finished, prev?.finished);
    const failedRate = rate(failed, prev?.failed);
    const failuresRate = rate(failures, prev?.failures);
    show(
      h(
        'h1',
        {},
        'Overview',
        h('span', { class: 'muted', style: 'font-size:13px;font-weight:400' }, `live, every ${POLL_MS / 1000} s`),
      ),
      h(
        'div',
        { class: 'cards' },
        card('Finished / s', finished === undefined ? 'n/a' : prev ? fmt(finishedRate, 2) : '…', waiting),
        card(
          'Failed / s',
          failed === undefined ? 'n/a' : prev ? fmt(failedRate, 2) : '…',
          'transactions ending failed',
          (failedRate ?? 0) > 0,
        ),
        card(
          'Branch failures / s',
          failures === undefined ? 'n/a' : prev ? fmt(failuresRate, 2) : '…',
          'errors, timeouts, failures',
          (failuresRate ?? 0) > 0,
        ),
        card('Stuck', fmt(stuck), 'transactions', (stuck ?? 0) > 0),
        card('Oldest unfinished', oldest === undefined ? 'n/a' : `${fmt(oldest)} s`, 'age'),
        card('Cron lag', lag === undefined ? 'n/a' : `${fmt(lag, 1)} s`, 'behind schedule'),
      ),
      h('h2', {}, 'Unfinished by status'),
      unfinished.size === 0
        ? h(
            'p',
            { class: 'muted' },
            sum(samples, 'dtx_unfinished_transactions') === undefined && oldest === undefined ? 'n/a' : 'None.',
          )
        : h(
            'div',
            { class: 'cards' },
            [...unfinished].map(([s, n]) => card(s, fmt(n), 'transactions')),
          ),
      h('h2', {}, 'Totals since start'),
      h(
        'div',
        { class: 'cards' },
        card('Finished', fmt(finished)),
        card('Failed', fmt(failed)),
        card('Branch failures', fmt(failures)),
        card('Retries', fmt(sum(samples, 'dtx_retries_total'))),
      ),
    );
    prev = { at: now, finished, failed, failures };
    timer = setTimeout(tick, POLL_MS);
  };
  await tick();
}

// ---- server info ----

async function serverView(): Promise<void> {
  const [version, info] = await Promise.all([
    getJson<{ version: string }>(`${API}/version`),
    getJson<Record<string, string | number>>(`${API}/info`).catch((err) => {
      if (err instanceof HttpError && err.status === 404) return undefined;
      throw err;
    }),
  ]);
  show(
    h('h1', {}, 'Server'),
    h(
      'div',
      { class: 'panel server-info' },
      kv([
        ['Version', mono(version.version)],
        ['Store', info?.store !== undefined ? String(info.store) : 'n/a'],
        ['HTTP port', info?.http_port !== undefined ? String(info.http_port) : 'n/a'],
        ['gRPC port', info?.grpc_port !== undefined ? String(info.grpc_port) : 'n/a'],
        ['Started', info?.started_at ? time(String(info.started_at)) : 'n/a'],
        ['Instance', info?.owner ? mono(String(info.owner)) : undefined],
        ['Admin base path', mono(BASE || '/')],
      ]),
    ),
  );
}

// ---- login ----

let loginOpen = false;
/** What a failed login is told, by the status of the check (anything else: the status itself). */
const LOGIN_REFUSED: Record<number, string> = {
  401: 'The server did not accept this token. Check it and try again.',
  403: 'This is a client token (Auth.Token). The admin UI needs an admin token (Auth.AdminToken).',
  429: 'Too many failed attempts from this address. Wait a little, then try again.',
};

/** The login form, shown on the first 401; `why` says why it is shown again (a token that stopped working). */
function login(why?: string): void {
  if (loginOpen) return;
  loginOpen = true;
  const input = h('input', {
    type: 'password',
    name: 'token',
    required: true,
    autocomplete: 'current-password',
    placeholder: 'Admin token',
    'aria-label': 'Admin token',
  });
  const message = h('div', { class: 'login-error', role: 'alert', hidden: !why }, why ?? '');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    { class: 'login', method: 'dialog' },
    h('h3', {}, 'Log in to dtx'),
    h('p', { class: 'muted' }, 'This server requires a token. Enter an admin token (Auth.AdminToken).'),
    input,
    message,
    h('div', { class: 'row' }, submit),
  );
  const dlg = h('dialog', { class: 'login-dialog' }, form);
  const refuse = (text: string) => {
    message.textContent = text;
    message.hidden = false;
    input.select();
    input.focus();
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return refuse('Enter the admin token.');
    submit.disabled = true;
    message.hidden = true;
    let status: number;
    try {
      status = await checkToken(t);
    } catch (err) {
      submit.disabled = false;
      return refuse(`The server did not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
    submit.disabled = false;
    if (status !== 200) return refuse(LOGIN_REFUSED[status] ?? `The server answered ${status}.`);
    setToken(t);
    loginOpen = false;
    dlg.close();
    dlg.remove();
    void render();
  });
  dlg.addEventListener('cancel', (e) => e.preventDefault());
  document.body.appendChild(dlg);
  dlg.showModal();
}

whenUnauthorized(() => {
  const had = token() !== null;
  setToken(null);
  login(had ? 'The server no longer accepts the saved token. Log in again.' : undefined);
});

for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
  const path = a.dataset.nav as string;
  a.href = url(path);
  a.addEventListener('click', (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(path);
  });
}
(document.getElementById('logout') as HTMLElement).addEventListener('click', () => {
  setToken(null);
  void render();
});
window.addEventListener('popstate', () => void render());
void render();
