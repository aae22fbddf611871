// Tiers: the loyalty levels users reach by lifetime points or by spend within a window.
// Everyone reads them; an admin changes them (a new version, in force on every engine at
// once; a save based on an old version is refused).

import {ApiError, call, can, get} from '../api.js';
import {h, field, pageHead, empty, fmtNum, fmtTime, problemBox, notify, busy, tableWrap, table} from '../dom.js';

const BASES = [['lifetime_points', 'Lifetime points'], ['spend', 'Spend within a window']];

/** tierRow is one editable tier: its name, its threshold and a button removing it. */
function tierRow(t, rows, redraw) {
  const name = h('input', {type: 'text', name: 'tier-name', required: true, autocomplete: 'off', spellcheck: 'false', pattern: '[a-z0-9][a-z0-9_-]{0,31}',
    value: t.name || '', 'aria-label': 'Tier name'});
  const threshold = h('input', {type: 'number', name: 'tier-threshold', required: true, min: '0', step: 'any', inputmode: 'decimal',
    value: t.threshold === undefined ? '' : String(t.threshold), 'aria-label': 'Threshold'});
  const remove = h('button', {type: 'button', class: 'link', dataset: {action: 'remove-tier'}}, 'Remove');
  const row = {name, threshold, el: h('tr', {dataset: {tier: t.name || ''}}, h('td', null, name), h('td', null, threshold), h('td', {class: 'row-actions'}, remove))};
  remove.addEventListener('click', () => {
    rows.splice(rows.indexOf(row), 1);
    redraw();
  });
  return row;
}

/** editor is an admin's form for the configuration cfg. */
function editor(cfg, alerts, rerender) {
  const basis = h('select', {name: 'basis'}, BASES.map(([v, label]) => h('option', {value: v, selected: cfg.basis === v}, label)));
  const windowInput = h('input', {type: 'text', name: 'window', autocomplete: 'off', value: cfg.window || '', placeholder: '8760h'});
  const windowBox = field('Spend window', windowInput, 'A duration of at least 24h, e.g. 8760h for a year: spend within it before each event counts.');
  const rows = [];
  const body = h('tbody');
  const redraw = () => body.replaceChildren(...rows.map((r) => r.el));
  for (const t of cfg.tiers || []) rows.push(tierRow(t, rows, redraw));
  redraw();
  const addTier = h('button', {type: 'button', dataset: {action: 'add-tier'}}, 'Add a tier');
  addTier.addEventListener('click', () => {
    rows.push(tierRow({}, rows, redraw));
    redraw();
    rows[rows.length - 1].name.focus();
  });
  const syncBasis = () => {
    windowBox.hidden = basis.value !== 'spend';
  };
  basis.addEventListener('change', syncBasis);
  syncBasis();
  const save = h('button', {type: 'submit', class: 'primary', dataset: {action: 'save-tiers'}}, 'Save tiers');
  const form = h('form', {class: 'editor', novalidate: true},
    h('div', {class: 'grid-2'}, field('Basis', basis), windowBox),
    tableWrap('Tiers', h('table', null, h('caption', {class: 'visually-hidden'}, 'Tiers'),
      h('thead', null, h('tr', null, ['Name', 'Threshold (points or money, lowest first)', ''].map((c) => h('th', {scope: 'col'}, c)))), body)),
    h('div', {class: 'actions'}, addTier, save));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      alerts.replaceChildren();
      const next = {basis: basis.value, tiers: rows.map((r) => ({name: r.name.value.trim(), threshold: Number(r.threshold.value)}))};
      if (basis.value === 'spend') next.window = windowInput.value.trim();
      try {
        const saved = (await call('PUT', '/v1/tiers', {body: next, ifMatch: cfg.version})).data;
        notify(`Saved the tiers, version ${saved.version}`);
        rerender();
      } catch (err) {
        if (err instanceof ApiError && err.status === 412) {
          const reload = h('button', {type: 'button', onclick: rerender}, 'Load the current version');
          alerts.replaceChildren(problemBox(new Error('Someone changed the tiers since you opened this page; nothing was saved.'), reload));
        } else {
          alerts.replaceChildren(problemBox(err));
        }
      }
    });
  });
  return form;
}

/** show is the page #/tiers. */
export async function show(view, params, rerender) {
  const cfg = await get('/v1/tiers');
  const alerts = h('div', {class: 'alerts'});
  const unit = cfg.basis === 'spend' ? `spend within ${cfg.window}` : 'lifetime points';
  view.append(pageHead('Tiers'),
    h('p', {class: 'muted'}, 'A user is in the highest tier whose threshold the basis reaches; upgrades apply at once, a user who no longer ' +
      'qualifies drops one tier at the first event of a month after the last change. Rules see it as user.tier.'),
    h('p', {dataset: {version: cfg.version}}, cfg.version ? `Version ${cfg.version}, by ${cfg.updated_by} at ${fmtTime(cfg.updated_at)}; by ${unit}.` :
      'No tiers configured yet (the default: lifetime points, no tiers).'));
  const tiers = cfg.tiers || [];
  if (tiers.length) {
    view.append(tableWrap('Tiers', table('Tiers', ['Tier', `From (${unit})`],
      tiers.map((t) => h('tr', {dataset: {tier: t.name}}, h('td', null, t.name), h('td', {class: 'num'}, fmtNum(t.threshold)))))));
  } else if (!can('admin')) {
    view.append(empty('No tiers yet. An admin can set them up.'));
  }
  if (can('admin')) view.append(h('section', {class: 'card', id: 'edit-tiers'}, h('h2', null, 'Change the tiers'), alerts, editor(cfg, alerts, rerender)));
}
