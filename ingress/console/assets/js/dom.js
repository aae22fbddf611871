// DOM helpers. Every node is built with h() or svg(): text goes in as text nodes, never
// as HTML, so data from the API cannot inject markup (there is no innerHTML anywhere).

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected' || k === 'disabled') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** add appends children to el as h does: strings become text, arrays are flattened,
 * null, undefined and false are skipped (the DOM's own append would write "null"). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

/** fill replaces el's children, as add appends them. */
export function fill(el, ...children) {
  el.replaceChildren();
  return add(el, ...children);
}

/** h builds an HTML element: h('a', {href: '#/x', class: 'button'}, 'text', child). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** svg builds an SVG element the same way. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

let ids = 0;
/** uid returns a fresh id for label/field pairs. */
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** field is a labelled form control with an optional hint. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  let hintEl = null;
  if (hint) {
    hintEl = h('p', {class: 'hint', id: uid('hint')}, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', {class: 'field'}, h('label', {for: control.id}, label), control, hintEl);
}

export function pad(n) {
  return String(n).padStart(2, '0');
}

/** fmtTime shows an RFC 3339 time as "2026-12-01 20:34 UTC" ("" for none). */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 2) return '';
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

const numberFormat = new Intl.NumberFormat('en');
/** fmtNum groups digits: 12,345. */
export function fmtNum(n) {
  return numberFormat.format(n || 0);
}

/** todayUTC is today's date as YYYY-MM-DD in UTC, as the stats count days. */
export function todayUTC() {
  return new Date().toISOString().slice(0, 10);
}

/** pretty is JSON indented for reading. */
export function pretty(v) {
  return JSON.stringify(v, null, 2);
}

/** heading is the page's h1; the router moves focus to it after each navigation. */
export function heading(text, ...extra) {
  return h('h1', {tabindex: '-1'}, text, ...extra);
}

/** pageHead is the title row of a page: its h1 and the page's actions. */
export function pageHead(title, ...actions) {
  return h('div', {class: 'page-head'}, heading(title), h('div', {class: 'actions'}, ...actions));
}

/** empty is a page's empty state: what is missing and, when there is one, what to do. */
export function empty(text, action) {
  return h('div', {class: 'empty'}, h('p', null, text), action || null);
}

/** badge is a status label. */
export function badge(status) {
  return h('span', {class: `badge badge-${status}`}, status);
}

/** tableWrap makes a wide table scroll on its own, reachable with the keyboard. */
export function tableWrap(label, table) {
  return h('div', {class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0'}, table);
}

/** table builds a table from column headers and rows of cells. */
export function table(caption, headers, rows) {
  return h('table', null,
    caption ? h('caption', {class: 'visually-hidden'}, caption) : null,
    h('thead', null, h('tr', null, headers.map((t) => h('th', {scope: 'col'}, t)))),
    h('tbody', null, rows));
}

/** problemBox shows an error from the API (a problem's title, detail and errors) or any
 * other error. */
export function problemBox(err, extra) {
  const p = err && err.problem;
  const box = h('div', {class: 'alert alert-error', role: 'alert'});
  if (!p) {
    box.append(h('p', null, (err && err.message) || 'Something went wrong.'));
  } else {
    box.append(h('p', null, h('strong', null, p.title || `Error ${err.status}`),
      p.detail ? ` — ${p.detail}` : ''));
    if (Array.isArray(p.errors) && p.errors.length) {
      box.append(h('ul', null, p.errors.map((e) => h('li', null,
        e.field ? h('code', null, e.field) : null, e.field ? ': ' : '',
        e.line ? `line ${e.line}, column ${e.column}: ` : '', e.message))));
    }
  }
  if (extra) box.append(extra);
  return box;
}

/** loading is a placeholder while a page fetches. */
export function loading(text = 'Loading…') {
  return h('p', {class: 'loading', role: 'status'}, text);
}

/** notify announces a message in the page's live region (and shows it for a while). */
export function notify(text, kind = 'ok') {
  const box = document.getElementById('toast');
  if (!box) return;
  const item = h('p', {class: `toast toast-${kind}`}, text);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

/** confirmDialog asks a yes/no question in a modal dialog and resolves to the answer. */
export function confirmDialog(question, yes = 'Confirm', danger = false) {
  return new Promise((resolve) => {
    const dlg = h('dialog', {class: 'dialog', 'aria-labelledby': uid('dlg')});
    const title = h('p', {id: dlg.getAttribute('aria-labelledby')}, question);
    const ok = h('button', {type: 'button', class: danger ? 'danger' : 'primary'}, yes);
    const cancel = h('button', {type: 'button'}, 'Cancel');
    dlg.append(title, h('div', {class: 'actions'}, cancel, ok));
    const done = (v) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

/** busy disables a button while f runs, so a double click sends one request. */
export async function busy(button, f) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await f();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
