/** A tiny DOM builder: h('td', { class: 'mono' }, 'text', child). Text is always set as text, never as HTML. */
export type Child = Node | string | number | null | undefined | false | Child[];
export type Attrs = Record<string, string | number | boolean | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

export function badge(text: string | undefined, cls = text): HTMLElement {
  return h('span', { class: `badge ${cls ?? ''}` }, text ?? '—');
}

export function mono(text: string | undefined): HTMLElement {
  return h('span', { class: 'mono' }, text ?? '—');
}

/** A local date-time from an RFC 3339 string; '—' when absent. */
export function time(iso: string | undefined | null): HTMLElement {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, iso);
  const p = (n: number) => String(n).padStart(2, '0');
  const local = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return h('time', { datetime: iso, title: iso }, local);
}

export function errorBox(err: unknown): HTMLElement {
  // a 401 is not a failure of the page: the login form is open over it
  if ((err as { status?: number } | null)?.status === 401)
    return h('div', { class: 'notice login-needed' }, (err as Error).message);
  return h('div', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
}

export function empty(text: string): HTMLElement {
  return h('div', { class: 'empty' }, text);
}

/** A modal asking to confirm `what`; resolves true when confirmed. */
export function confirmDialog(title: string, what: string, action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h(
      'dialog',
      { class: 'confirm' },
      h('h3', {}, title),
      h('p', {}, what),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', 'data-confirm': true, onclick: () => done(true) }, action),
      ),
    );
    const done = (ok: boolean) => {
      dlg.close();
      dlg.remove();
      resolve(ok);
    };
    dlg.addEventListener('cancel', () => done(false));
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}
