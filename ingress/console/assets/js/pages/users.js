// Users: look one up, then see the loyalty state, tier, rewards, coupons and ledger.

import {ApiError, can, get, post, url, query} from '../api.js';
import {h, add, field, pageHead, heading, empty, fmtNum, fmtTime, pretty, problemBox, notify, busy, tableWrap, table} from '../dom.js';

function searchForm(value = '') {
  const input = h('input', {type: 'search', name: 'user', value, required: true, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'e.g. alice'});
  const form = h('form', {class: 'search', role: 'search'},
    field('User id (exactly as the storefront sends it)', input),
    h('button', {type: 'submit', class: 'primary'}, 'Look up'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) location.hash = `#/users/${encodeURIComponent(input.value.trim())}`;
  });
  return form;
}

/** search is the page #/users. */
export async function search(view) {
  view.append(pageHead('Users'), searchForm(),
    empty('Look a user up by id to see their points, tier, rewards, coupons and ledger.'));
}

const PAGE = 50;

/** pager lists a paged per-user collection (rewards, ledger) with "Show more". */
function pager(path, key, columns, row, label) {
  const body = h('tbody');
  const box = h('div');
  const more = h('button', {type: 'button'}, 'Show more');
  let cursor = '';
  const next = async () => {
    const page = await get(query(path, {limit: PAGE, cursor}));
    const items = page[key] || [];
    for (const it of items) body.append(row(it));
    cursor = page.next_cursor || '';
    more.hidden = !cursor;
    if (!body.children.length) box.replaceChildren(empty(`No ${label} yet.`));
    return items;
  };
  more.addEventListener('click', () => busy(more, next));
  box.append(tableWrap(label, h('table', null,
    h('caption', {class: 'visually-hidden'}, label),
    h('thead', null, h('tr', null, columns.map((c) => h('th', {scope: 'col'}, c)))), body)), more);
  return {element: box, next};
}

function signed(n) {
  return n > 0 ? `+${fmtNum(n)}` : fmtNum(n);
}

function adjustForm(id) {
  const points = h('input', {type: 'number', name: 'points', step: '1', required: true});
  const reason = h('input', {type: 'text', name: 'reason', required: true, autocomplete: 'off'});
  const out = h('div', {'aria-live': 'polite'});
  const send = h('button', {type: 'submit'}, 'Adjust');
  const form = h('form', {class: 'inline-form'},
    field('Points (negative to debit)', points), field('Reason (audited)', reason), send, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(send, async () => {
      out.replaceChildren();
      try {
        const res = await post(url`/v1/users/${id}/adjustments`, {points: Number(points.value), reason: reason.value});
        out.replaceChildren(h('p', {class: 'ok'}, `Queued as event ${res.event_id}; the ledger shows it once applied.`));
        notify('Adjustment queued');
      } catch (err) {
        out.replaceChildren(problemBox(err));
      }
    });
  });
  return form;
}

/** show is the page #/users/{id}. */
export async function show(view, [id]) {
  view.append(h('p', {class: 'crumbs'}, h('a', {href: '#/users'}, 'Users'), ' / ', id));
  let u;
  try {
    u = await get(url`/v1/users/${id}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      view.append(heading(id), searchForm(id),
        empty(`No user “${id}” has been seen: none of their events was processed yet. Ids are case-sensitive.`));
      return;
    }
    throw err;
  }
  const stat = (label, value, key) => h('div', {class: 'stat', dataset: {stat: key}}, h('p', {class: 'stat-label'}, label), h('p', {class: 'stat-value'}, value));
  const counts = (m) => Object.entries(m || {}).sort(([a], [b]) => a.localeCompare(b));
  add(view,
    h('div', {class: 'page-head'}, heading(u.user_id), h('div', {class: 'actions'}, searchForm())),
    h('section', {class: 'stats'},
      stat('Points', fmtNum(u.points), 'points'),
      stat('Lifetime points', fmtNum(u.lifetime_points), 'lifetime'),
      stat('Tier', u.tier || '—', 'tier'),
      stat('Purchases', fmtNum(u.purchase_count), 'purchases'),
      stat('Total spent', (u.total_spent || 0).toFixed(2), 'spent')),
    u.last_rejection ? h('div', {class: 'alert alert-warn', role: 'status'},
      h('p', null, h('strong', null, 'Last refused event: '), `${u.last_rejection.event_id} (${u.last_rejection.type || 'event'}) — ${u.last_rejection.reason}`,
        u.last_rejection.at ? ` · ${fmtTime(u.last_rejection.at)}` : '')) : null,
    h('section', {class: 'card'}, h('h2', null, 'State'),
      h('div', {class: 'grid-3'},
        h('dl', {class: 'props'},
          h('dt', null, 'First seen'), h('dd', null, fmtTime(u.first_seen) || '—'),
          h('dt', null, 'Last purchase'), h('dd', null, fmtTime(u.last_purchase_at) || '—'),
          h('dt', null, 'Next expiry'), h('dd', null, fmtTime(u.next_expiry) || '—'),
          h('dt', null, 'Updated'), h('dd', null, fmtTime(u.updated_at) || '—')),
        h('div', null, h('h3', null, 'Events'), counts(u.event_counts).length ?
          table('Events by type', ['Type', 'Count'], counts(u.event_counts).map(([k, n]) => h('tr', null, h('td', null, k), h('td', {class: 'num'}, fmtNum(n))))) :
          h('p', {class: 'muted'}, 'none')),
        h('div', null, h('h3', null, 'Rewards by campaign'), counts(u.reward_counts).length ?
          table('Rewards by campaign', ['Campaign', 'Count'], counts(u.reward_counts).map(([k, n]) => h('tr', null,
            h('td', null, h('a', {href: `#/campaigns/${encodeURIComponent(k)}`}, k)), h('td', {class: 'num'}, fmtNum(n))))) :
          h('p', {class: 'muted'}, 'none')))));

  const coupons = h('tbody');
  const couponBox = h('section', {class: 'card'}, h('h2', null, 'Coupons'));
  const rewards = pager(url`/v1/users/${id}/rewards`, 'rewards',
    ['When', 'Campaign', 'Version', 'Type', 'Points', 'Event', 'Payload'], (r) => {
      if (r.type === 'coupon' || (r.payload && r.payload.coupon_code)) { // a pool's code on free_shipping too
        coupons.append(h('tr', null, h('td', null, h('code', {class: 'coupon'}, (r.payload && r.payload.coupon_code) || '—')),
          h('td', null, h('a', {href: `#/campaigns/${encodeURIComponent(r.campaign_id)}`}, r.campaign_id)), h('td', null, fmtTime(r.occurred_at))));
      }
      return h('tr', {dataset: {reward: r.id, campaign: r.campaign_id}},
        h('td', null, fmtTime(r.occurred_at)),
        h('td', null, h('a', {href: `#/campaigns/${encodeURIComponent(r.campaign_id)}`}, r.campaign_id)),
        h('td', {class: 'num'}, String(r.campaign_version)),
        h('td', null, r.type),
        h('td', {class: 'num points'}, r.type === 'points' ? fmtNum(r.points) : ''),
        h('td', null, h('code', {class: 'small'}, r.event_id)),
        h('td', null, r.payload && Object.keys(r.payload).length ? h('details', null, h('summary', null, 'show'), h('pre', null, pretty(r.payload))) : ''));
    }, 'rewards');
  const ledger = pager(url`/v1/users/${id}/ledger`, 'entries',
    ['When', 'Kind', 'Points', 'Balance', 'Event', 'Campaign', 'Note'], (e) => h('tr', {dataset: {kind: e.kind}},
      h('td', null, fmtTime(e.occurred_at)),
      h('td', null, h('span', {class: `kind kind-${e.kind}`}, e.kind)),
      h('td', {class: `num ${e.points < 0 ? 'neg' : 'pos'}`}, signed(e.points)),
      h('td', {class: 'num'}, fmtNum(e.balance_after)),
      h('td', null, h('code', {class: 'small'}, e.event_id)),
      h('td', null, e.campaign_id ? `${e.campaign_id} v${e.campaign_version}` : ''),
      h('td', null, [e.reason, e.actor && `by ${e.actor}`, e.expires_at && `expires ${fmtTime(e.expires_at)}`].filter(Boolean).join(' · '))), 'ledger entries');
  view.append(h('section', {class: 'card'}, h('h2', null, 'Rewards'), rewards.element), couponBox,
    h('section', {class: 'card'}, h('h2', null, 'Points ledger'), ledger.element));
  if (can('admin')) {
    view.append(h('section', {class: 'card'}, h('h2', null, 'Adjust points'),
      h('p', {class: 'muted'}, 'Becomes a points.adjust event of the user, applied in order with their events; a debit below zero is refused.'),
      adjustForm(id)));
  }
  try {
    await Promise.all([rewards.next(), ledger.next()]);
  } catch (err) {
    view.append(problemBox(err));
  }
  couponBox.append(coupons.children.length ?
    tableWrap('Coupons', h('table', null, h('thead', null, h('tr', null, ['Code', 'Campaign', 'When'].map((t) => h('th', {scope: 'col'}, t)))), coupons)) :
    h('p', {class: 'muted'}, 'No coupons granted (among the rewards shown).'));
}
