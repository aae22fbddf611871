// Coupon code pools: how many codes each has left, a new pool, and one pool's page to add
// codes (generated from a pattern or pasted), change its low-water mark or delete it.

import {call, can, get, getAll, post, url} from '../api.js';
import {h, field, pageHead, heading, empty, fmtNum, fmtTime, problemBox, notify, busy, tableWrap, table, confirmDialog} from '../dom.js';

/** poolPath is the address of pool id's page. */
export function poolPath(id) {
  return `#/pools/${encodeURIComponent(id)}`;
}

/** level is a pool's state in a word: empty, low (at or below its low-water mark) or ok. */
function level(p) {
  if (p.left === 0) return h('span', {class: 'badge badge-archived', dataset: {level: 'empty'}}, 'empty');
  if (p.low) return h('span', {class: 'badge badge-paused', dataset: {level: 'low'}}, 'low');
  return h('span', {class: 'badge badge-active', dataset: {level: 'ok'}}, 'ok');
}

function numberInput(name, value, min, required) {
  return h('input', {type: 'number', name, step: '1', min, inputmode: 'numeric', required, value: value === undefined ? '' : String(value)});
}

/** expiryValue is a datetime-local value (UTC) as RFC 3339, or undefined when empty. */
function expiryValue(input) {
  return input.value ? new Date(`${input.value}Z`).toISOString() : undefined;
}

function createForm(alerts) {
  const name = h('input', {type: 'text', name: 'name', required: true, autocomplete: 'off', maxlength: '200'});
  const id = h('input', {type: 'text', name: 'id', autocomplete: 'off', spellcheck: 'false', pattern: '[a-z0-9][a-z0-9-]{0,63}'});
  const pattern = h('input', {type: 'text', name: 'pattern', class: 'mono', autocomplete: 'off', spellcheck: 'false', placeholder: 'SHIP-####-####'});
  const count = numberInput('count', '', 0);
  const lowWater = numberInput('low-water', '', 0);
  const expires = h('input', {type: 'datetime-local', name: 'expires-at'});
  const save = h('button', {type: 'submit', class: 'primary', dataset: {action: 'create-pool'}}, 'Create pool');
  const form = h('form', {class: 'editor', novalidate: true},
    h('div', {class: 'grid-2'},
      field('Name', name),
      field('Id', id, 'Lower-case letters, digits and dashes; made from the name when empty.'),
      field('Pattern of generated codes', pattern, 'Each # becomes a random character without look-alikes (no 0/O, 1/I/L); other characters stay.'),
      field('Codes to generate now', count, 'Needs a pattern; more can be generated or imported later.'),
      field('Low-water mark', lowWater, 'The pool is low at or below this many codes left (alert CouponPoolLow); empty: the server default.'),
      field('Codes expire (UTC)', expires, 'For codes added without an expiry of their own; empty: never.')),
    h('div', {class: 'actions'}, save));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      alerts.replaceChildren();
      if (!name.value.trim()) {
        alerts.replaceChildren(problemBox(new Error('A pool needs a name.')));
        name.focus();
        return;
      }
      const body = {name: name.value.trim()};
      if (id.value.trim()) body.id = id.value.trim();
      if (pattern.value.trim()) body.pattern = pattern.value.trim();
      if (Number(count.value) > 0) body.count = Number(count.value);
      if (lowWater.value !== '') body.low_water = Number(lowWater.value);
      if (expiryValue(expires)) body.expires_at = expiryValue(expires);
      try {
        const p = await post('/v1/pools', body);
        notify(`Created pool ${p.name} with ${fmtNum(p.total)} codes`);
        location.hash = poolPath(p.id);
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  return form;
}

/** list is the page #/pools. */
export async function list(view) {
  const pools = await getAll('/v1/pools', 'pools');
  const alerts = h('div', {class: 'alerts'});
  view.append(pageHead('Coupon pools'),
    h('p', {class: 'muted'}, 'A coupon or free-shipping campaign that names a pool gives each reward one of its codes, in the reward\'s own commit; ' +
      'when a pool has none left its rewards are refused.'));
  if (!pools.length) {
    view.append(empty(can('editor') ? 'No pools yet: create one below, with codes generated from a pattern or imported later.' :
      'No pools yet. An editor or admin can create them.'));
  } else {
    const rows = pools.map((p) => h('tr', {dataset: {pool: p.id}},
      h('td', null, h('a', {href: poolPath(p.id)}, p.name), h('div', {class: 'muted small'}, p.id)),
      h('td', null, level(p)),
      h('td', {class: 'num', dataset: {left: p.left}}, fmtNum(p.left)),
      h('td', {class: 'num'}, fmtNum(p.total)),
      h('td', {class: 'num'}, fmtNum(p.issued)),
      h('td', {class: 'num'}, fmtNum(p.redeemed)),
      h('td', {class: 'num'}, fmtNum(p.low_water))));
    view.append(tableWrap('Coupon pools', table('Coupon pools', ['Pool', 'Level', 'Left', 'Total', 'Issued', 'Redeemed', 'Low water'], rows)));
  }
  if (can('editor')) view.append(h('section', {class: 'card', id: 'new-pool'}, h('h2', null, 'New pool'), alerts, createForm(alerts)));
}

/** codesOf reads pasted codes: one per line, blank lines and lines starting with # skipped. */
function codesOf(text) {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

function addedText(r) {
  const parts = [`${fmtNum(r.added)} codes added`];
  if (r.duplicates) parts.push(`${fmtNum(r.duplicates)} left out (they exist already)`);
  if (r.repeated) parts.push(`${fmtNum(r.repeated)} repeated`);
  return `${parts.join(', ')}; ${fmtNum(r.left)} left of ${fmtNum(r.total)}`;
}

/** codesForms are an editor's ways to add codes: generate from a pattern, or paste. */
function codesForms(p, alerts, rerender) {
  const count = numberInput('generate-count', '', 1, true);
  const pattern = h('input', {type: 'text', name: 'generate-pattern', class: 'mono', autocomplete: 'off', spellcheck: 'false',
    placeholder: p.pattern || 'SHIP-####-####'});
  const generate = h('button', {type: 'submit', dataset: {action: 'generate'}}, 'Generate');
  const gen = h('form', {class: 'inline-form'}, field('Codes', count), field('Pattern', pattern, p.pattern ? `Empty: the pool's, ${p.pattern}.` : 'Needed: the pool has none.'), generate);
  gen.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(generate, async () => {
      alerts.replaceChildren();
      const body = {count: Number(count.value)};
      if (pattern.value.trim()) body.pattern = pattern.value.trim();
      try {
        notify(addedText(await post(url`/v1/pools/${p.id}/generate`, body)));
        rerender();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  const pasted = h('textarea', {name: 'import-codes', rows: 4, class: 'mono', spellcheck: 'false', autocapitalize: 'off',
    placeholder: 'PARTNER-0001\nPARTNER-0002'});
  const send = h('button', {type: 'submit', dataset: {action: 'import'}}, 'Import');
  const imp = h('form', {class: 'editor'}, field('Codes to import, one per line', pasted,
    'Case does not matter; codes that exist already (in any pool) are left out. For large files use campaignctl pools import.'),
  h('div', {class: 'actions'}, send));
  imp.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(send, async () => {
      alerts.replaceChildren();
      const codes = codesOf(pasted.value);
      if (!codes.length) {
        alerts.replaceChildren(problemBox(new Error('Paste at least one code.')));
        pasted.focus();
        return;
      }
      try {
        notify(addedText(await post(url`/v1/pools/${p.id}/codes`, {codes})));
        rerender();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  return h('section', {class: 'card'}, h('h2', null, 'Add codes'), gen, imp);
}

/** settingsForm changes the pool's name, description and low-water mark. */
function settingsForm(p, alerts, rerender) {
  const name = h('input', {type: 'text', name: 'pool-name', required: true, autocomplete: 'off', maxlength: '200', value: p.name});
  const description = h('textarea', {name: 'pool-description', rows: 2}, p.description || '');
  const lowWater = numberInput('pool-low-water', p.low_water, 0, true);
  const save = h('button', {type: 'submit', dataset: {action: 'save-pool'}}, 'Save');
  const form = h('form', {class: 'editor'},
    h('div', {class: 'grid-2'}, field('Name', name), field('Low-water mark', lowWater, 'Low at or below this many codes left.')),
    field('Description', description), h('div', {class: 'actions'}, save));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      alerts.replaceChildren();
      try {
        const saved = (await call('PATCH', url`/v1/pools/${p.id}`, {body: {name: name.value.trim(), description: description.value,
          low_water: Number(lowWater.value)}})).data;
        notify(`Saved pool ${saved.name}`);
        rerender();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  return h('section', {class: 'card'}, h('h2', null, 'Settings'), form);
}

/** show is the page #/pools/{id}. */
export async function show(view, [id], rerender) {
  const [p, campaigns] = await Promise.all([get(url`/v1/pools/${id}`), getAll('/v1/campaigns', 'campaigns')]);
  const takers = campaigns.filter((c) => c.reward && c.reward.pool === p.id);
  const alerts = h('div', {class: 'alerts'});
  let remove = null;
  if (can('editor')) {
    remove = h('button', {type: 'button', class: 'danger', dataset: {action: 'delete-pool'}}, 'Delete pool');
    remove.addEventListener('click', () => busy(remove, async () => {
      if (!(await confirmDialog(`Delete pool ${p.name} and its ${fmtNum(p.total)} free codes?`, 'Delete', true))) return;
      alerts.replaceChildren();
      try {
        await call('DELETE', url`/v1/pools/${p.id}`);
        notify(`Deleted pool ${p.name}`);
        location.hash = '#/pools';
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    }));
  }
  const stat = (label, value, key) => h('div', {class: 'stat', dataset: {stat: key}}, h('p', {class: 'stat-label'}, label),
    h('p', {class: 'stat-value'}, fmtNum(value)));
  view.append(h('p', {class: 'crumbs'}, h('a', {href: '#/pools'}, 'Coupon pools'), ` / ${p.id}`),
    h('div', {class: 'page-head'}, heading(p.name, ' ', level(p)), h('div', {class: 'actions'}, remove)),
    p.description ? h('p', null, p.description) : null,
    alerts,
    h('section', {class: 'card'}, h('h2', null, 'Codes'),
      h('div', {class: 'stats'}, stat('Left', p.left, 'left'), stat('Total', p.total, 'total'), stat('Issued', p.issued, 'issued'),
        stat('Redeemed', p.redeemed, 'redeemed'), stat('Expired unused', p.expired, 'expired'), stat('Low water', p.low_water, 'low_water')),
      h('p', {class: 'muted small'}, `Pattern ${p.pattern || '—'} · codes added without an expiry ${p.expires_at ? `expire ${fmtTime(p.expires_at)}` : 'never expire'}` +
        ` · created ${fmtTime(p.created_at)} by ${p.created_by}`)),
    h('section', {class: 'card', id: 'pool-campaigns'}, h('h2', null, 'Campaigns taking codes from it'),
      takers.length ? h('ul', null, takers.map((c) => h('li', {dataset: {campaign: c.id}},
        h('a', {href: `#/campaigns/${encodeURIComponent(c.id)}`}, c.name || c.id), ` (${c.status})`))) :
        h('p', {class: 'muted'}, 'None: a coupon or free-shipping campaign takes codes from the pool its reward names.')));
  if (can('editor')) view.append(codesForms(p, alerts, rerender), settingsForm(p, alerts, rerender));
}
