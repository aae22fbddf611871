// Webhooks (admin): the endpoints rewards and loyalty notices are delivered to, signed.
// The list and a new endpoint (its secret shown once); an endpoint's page sends a test,
// turns it on or off, rotates its secret, deletes it and lists its deliveries, a failed
// one sent again with a click.

import {call, get, getAll, post, query, url} from '../api.js';
import {h, field, pageHead, heading, empty, fmtNum, fmtTime, problemBox, notify, busy, tableWrap, table, confirmDialog, badge} from '../dom.js';

/** NOTICES are the notice kinds an endpoint may receive. */
const NOTICES = [['reward', 'Rewards'], ['tier_changed', 'Tier changes'], ['points_expired', 'Points expired'], ['coupon_redeemed', 'Coupons redeemed']];

/** webhookPath is the address of endpoint id's page. */
export function webhookPath(id) {
  return `#/webhooks/${encodeURIComponent(id)}`;
}

function state(w) {
  return badge(w.enabled ? 'enabled' : 'disabled');
}

/** filterText sums up what an endpoint receives. */
function filterText(f) {
  const kinds = (f && f.notices && f.notices.length) ? f.notices.join(', ') : 'every notice';
  const more = [];
  if (f && f.reward_types && f.reward_types.length) more.push(`reward types ${f.reward_types.join(', ')}`);
  if (f && f.campaigns && f.campaigns.length) more.push(`campaigns ${f.campaigns.join(', ')}`);
  return more.length ? `${kinds} (${more.join('; ')})` : kinds;
}

/** listOf splits a comma-separated field into its items. */
function listOf(input) {
  return input.value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** secretBox shows a signing secret once, selected for copying. */
function secretBox(text, secret, done) {
  const input = h('input', {type: 'text', readonly: true, value: secret, class: 'mono secret', 'aria-label': 'The signing secret'});
  const box = h('div', {class: 'alert alert-ok', role: 'status', dataset: {secret: ''}},
    h('p', null, h('strong', null, text), ' Copy it now: it is shown only once. Verify each delivery\'s webhook-signature with it (README, Deliver rewards).'),
    input, h('button', {type: 'button', onclick: done}, 'Done'));
  setTimeout(() => {
    input.focus();
    input.select();
  });
  return box;
}

function createForm(alerts, rerender) {
  const address = h('input', {type: 'url', name: 'url', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'the https address of your receiver'});
  const description = h('input', {type: 'text', name: 'description', autocomplete: 'off', maxlength: '500'});
  const kinds = NOTICES.map(([k, label]) => [k, h('input', {type: 'checkbox', name: `notice-${k}`, checked: k === 'reward'}), label]);
  const rewardTypes = h('input', {type: 'text', name: 'reward-types', autocomplete: 'off', placeholder: 'coupon, free_shipping'});
  const campaigns = h('input', {type: 'text', name: 'campaigns', autocomplete: 'off', placeholder: 'june-ship'});
  const save = h('button', {type: 'submit', class: 'primary', dataset: {action: 'create-webhook'}}, 'Create endpoint');
  const form = h('form', {class: 'editor', novalidate: true},
    h('div', {class: 'grid-2'}, field('URL (https; no redirects are followed)', address), field('Description', description)),
    h('fieldset', null, h('legend', null, 'Notices'), kinds.map(([, box, label]) => h('label', {class: 'inline'}, box, ` ${label}`))),
    h('div', {class: 'grid-2'},
      field('Only rewards of these types (comma-separated)', rewardTypes, 'Empty: every type.'),
      field('Only rewards of these campaigns (comma-separated ids)', campaigns, 'Empty: every campaign.')),
    h('div', {class: 'actions'}, save));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      alerts.replaceChildren();
      const filter = {notices: kinds.filter(([, box]) => box.checked).map(([k]) => k)};
      if (listOf(rewardTypes).length) filter.reward_types = listOf(rewardTypes);
      if (listOf(campaigns).length) filter.campaigns = listOf(campaigns);
      try {
        const w = await post('/v1/webhooks', {url: address.value.trim(), description: description.value.trim(), filter});
        alerts.replaceChildren(secretBox(`Signing secret of ${w.url}:`, w.secret, () => {
          location.hash = webhookPath(w.id);
        }));
        notify(`Created endpoint ${w.id}`);
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  return form;
}

/** list is the page #/webhooks. */
export async function list(view, params, rerender) {
  const hooks = await getAll('/v1/webhooks', 'webhooks');
  const alerts = h('div', {class: 'alerts'});
  view.append(pageHead('Webhooks'),
    h('p', {class: 'muted'}, 'Each endpoint gets the notices it asks for as signed POSTs (Standard Webhooks), at least once, retried for about a day.'));
  if (!hooks.length) {
    view.append(empty('No endpoints yet: create one below.'));
  } else {
    const rows = hooks.map((w) => h('tr', {dataset: {webhook: w.id}},
      h('td', null, h('a', {href: webhookPath(w.id)}, w.url), h('div', {class: 'muted small'}, w.description || w.id)),
      h('td', null, state(w), w.disabled_reason ? h('div', {class: 'muted small'}, w.disabled_reason) : null),
      h('td', null, filterText(w.filter)),
      h('td', null, fmtTime(w.created_at))));
    view.append(tableWrap('Webhooks', table('Webhooks', ['Endpoint', 'State', 'Receives', 'Created'], rows)));
  }
  view.append(h('section', {class: 'card', id: 'new-webhook'}, h('h2', null, 'New endpoint'), alerts, createForm(alerts, rerender)));
}

const STATUSES = [['', 'All'], ['pending', 'Pending'], ['failed', 'Failed'], ['succeeded', 'Succeeded']];

/** deliveries lists an endpoint's deliveries of a status, a failed one with a retry button. */
async function deliveries(w, status, alerts, redraw) {
  const page = await get(query(url`/v1/webhooks/${w.id}/deliveries`, {limit: 100, status}));
  const items = page.deliveries || [];
  if (!items.length) return empty(status ? `No ${status} deliveries.` : 'No deliveries yet.');
  const rows = items.map((d) => {
    let action = null;
    if (d.status === 'failed') {
      action = h('button', {type: 'button', dataset: {action: 'retry'}}, 'Send again');
      action.addEventListener('click', () => busy(action, async () => {
        alerts.replaceChildren();
        try {
          await post(url`/v1/webhooks/${w.id}/deliveries/${d.id}/retry`);
          notify(`Delivery ${d.id} queued again`);
          redraw();
        } catch (err) {
          alerts.replaceChildren(problemBox(err));
        }
      }));
    }
    const last = d.last_status ? `HTTP ${d.last_status}` : (d.last_error || '—');
    return h('tr', {dataset: {delivery: d.id, status: d.status}},
      h('td', null, h('code', {class: 'small'}, d.id), h('div', {class: 'muted small'}, d.type)),
      h('td', null, h('span', {class: `badge badge-${d.status === 'succeeded' ? 'active' : d.status === 'failed' ? 'archived' : 'paused'}`}, d.status)),
      h('td', {class: 'num'}, fmtNum(d.attempts)),
      h('td', null, last, d.last_latency_ms !== undefined ? h('div', {class: 'muted small'}, `${d.last_latency_ms.toFixed(1)} ms`) : null),
      h('td', null, fmtTime(d.last_attempt_at)),
      h('td', null, d.next_attempt_at ? fmtTime(d.next_attempt_at) : '—'),
      h('td', {class: 'row-actions'}, action));
  });
  return tableWrap('Deliveries', table('Deliveries', ['Notice', 'Status', 'Attempts', 'Last answer', 'Last attempt', 'Next attempt', ''], rows));
}

/** actions are an endpoint's buttons: test, enable or disable, rotate the secret, delete. */
function actions(w, alerts, rerender) {
  const test = h('button', {type: 'button', dataset: {action: 'test'}}, 'Send a test');
  test.addEventListener('click', () => busy(test, async () => {
    alerts.replaceChildren();
    try {
      const d = await post(url`/v1/webhooks/${w.id}/test`);
      const ok = d.status === 'succeeded';
      alerts.replaceChildren(h('div', {class: `alert ${ok ? 'alert-ok' : 'alert-error'}`, role: 'status', dataset: {test: d.status}},
        h('p', null, ok ? `The endpoint answered HTTP ${d.last_status} in ${d.last_latency_ms.toFixed(1)} ms.` :
          `The test failed: ${d.last_status ? `HTTP ${d.last_status}` : d.last_error}.`)));
    } catch (err) {
      alerts.replaceChildren(problemBox(err));
    }
  }));
  const toggle = h('button', {type: 'button', dataset: {action: w.enabled ? 'disable' : 'enable'}}, w.enabled ? 'Disable' : 'Enable');
  toggle.addEventListener('click', () => busy(toggle, async () => {
    alerts.replaceChildren();
    try {
      await call('PATCH', url`/v1/webhooks/${w.id}`, {body: {enabled: !w.enabled}, ifMatch: w.version});
      notify(w.enabled ? 'Disabled: notices wait until it is enabled again' : 'Enabled: what waited is delivered now');
      rerender();
    } catch (err) {
      alerts.replaceChildren(problemBox(err));
    }
  }));
  const rotate = h('button', {type: 'button', dataset: {action: 'rotate'}}, 'Rotate secret');
  rotate.addEventListener('click', () => busy(rotate, async () => {
    if (!(await confirmDialog('Give the endpoint a new signing secret? The current one keeps signing too for 24 hours.', 'Rotate'))) return;
    alerts.replaceChildren();
    try {
      const r = await post(url`/v1/webhooks/${w.id}/rotate-secret`);
      alerts.replaceChildren(secretBox('New signing secret:', r.secret, rerender));
    } catch (err) {
      alerts.replaceChildren(problemBox(err));
    }
  }));
  const remove = h('button', {type: 'button', class: 'danger', dataset: {action: 'delete-webhook'}}, 'Delete');
  remove.addEventListener('click', () => busy(remove, async () => {
    if (!(await confirmDialog(`Delete the endpoint ${w.url} and its delivery records? Deliveries to it stop.`, 'Delete', true))) return;
    alerts.replaceChildren();
    try {
      await call('DELETE', url`/v1/webhooks/${w.id}`);
      notify(`Deleted endpoint ${w.id}`);
      location.hash = '#/webhooks';
    } catch (err) {
      alerts.replaceChildren(problemBox(err));
    }
  }));
  return h('div', {class: 'actions'}, test, toggle, rotate, remove);
}

/** show is the page #/webhooks/{id}. */
export async function show(view, [id], rerender) {
  const w = await get(url`/v1/webhooks/${id}`);
  const alerts = h('div', {class: 'alerts', 'aria-live': 'polite'});
  const filter = h('select', {name: 'delivery-status'}, STATUSES.map(([v, label]) => h('option', {value: v}, label)));
  const holder = h('div', {id: 'deliveries'});
  const draw = async () => {
    holder.dataset.ready = 'false';
    try {
      holder.replaceChildren(await deliveries(w, filter.value, alerts, draw));
    } catch (err) {
      holder.replaceChildren(problemBox(err));
    }
    holder.dataset.ready = 'true';
  };
  filter.addEventListener('change', draw);
  const refresh = h('button', {type: 'button', dataset: {action: 'refresh'}}, 'Refresh');
  refresh.addEventListener('click', () => busy(refresh, draw));
  view.append(h('p', {class: 'crumbs'}, h('a', {href: '#/webhooks'}, 'Webhooks'), ` / ${w.id}`),
    h('div', {class: 'page-head'}, heading(w.description || w.url, ' ', state(w)), actions(w, alerts, rerender)),
    alerts,
    h('section', {class: 'card'}, h('h2', null, 'Endpoint'),
      h('dl', {class: 'props'},
        h('dt', null, 'URL'), h('dd', null, h('code', null, w.url)),
        h('dt', null, 'Receives'), h('dd', null, filterText(w.filter)),
        w.disabled_reason ? [h('dt', null, 'Disabled'), h('dd', null, w.disabled_reason)] : null,
        w.previous_secret_until ? [h('dt', null, 'Old secret signs until'), h('dd', null, fmtTime(w.previous_secret_until))] : null,
        h('dt', null, 'Created'), h('dd', null, `${fmtTime(w.created_at)} by ${w.created_by}`))),
    h('section', {class: 'card'}, h('h2', null, 'Deliveries'),
      h('div', {class: 'inline-form'}, field('Status', filter), refresh), holder));
  await draw();
}
