// Create and edit a campaign, with the rule and points checked as you type and tried on a
// sample event before saving. Saving an edit sends If-Match with the version loaded.

import {ApiError, call, get, getAll, url} from '../api.js';
import {h, field, heading, pretty, problemBox, notify, busy, fmtNum} from '../dom.js';
import {liveCheck, ruleTester} from '../rules.js';
import {campaignPath, conflictBox} from './campaign.js';

const REWARD_TYPES = [['points', 'Points'], ['coupon', 'Coupon'], ['free_shipping', 'Free shipping'], ['notification', 'Notification']];
const LIMITS = [['per_user', 'Per user'], ['per_user_per_day', 'Per user per day'], ['total_rewards', 'Total rewards'], ['total_points', 'Total points']];

/** localInput turns an RFC 3339 time into a datetime-local value in UTC. */
function localInput(iso) {
  return iso ? new Date(iso).toISOString().slice(0, 16) : '';
}

function numberInput(name, value, min) {
  return h('input', {type: 'number', name, step: '1', min, inputmode: 'numeric', value: value ? String(value) : ''});
}

/** CODE_TYPES are the reward types that can take a code from a pool. */
const CODE_TYPES = ['coupon', 'free_shipping'];

/** poolSelect picks the pool a reward takes its code from ('' for none), listing pools
 * with their codes left; a pool the campaign names that is not listed stays selectable. */
function poolSelect(pools, current) {
  const sel = h('select', {name: 'reward-pool'}, h('option', {value: ''}, 'None: no code'),
    pools.map((p) => h('option', {value: p.id, selected: current === p.id}, `${p.name} (${p.id}, ${fmtNum(p.left)} left)`)));
  if (current && !pools.some((p) => p.id === current)) sel.append(h('option', {value: current, selected: true}, `${current} (not found)`));
  return sel;
}

/** form builds the editor for campaign c (null: a new one), with the pools a reward may
 * take codes from. */
function form(view, c, rerender, pools) {
  const isNew = !c;
  const v = c || {reward: {type: 'points'}, limits: {}, priority: 0};
  const r = v.reward || {type: 'points'};
  const inputs = {
    name: h('input', {type: 'text', name: 'name', required: true, value: v.name || '', autocomplete: 'off'}),
    id: h('input', {type: 'text', name: 'id', value: v.id || '', pattern: '[a-z0-9][a-z0-9-]{0,63}', autocomplete: 'off',
      spellcheck: 'false', disabled: !isNew}),
    description: h('textarea', {name: 'description', rows: 2}, v.description || ''),
    rule: h('textarea', {name: 'rule', rows: 4, class: 'mono', spellcheck: 'false', autocomplete: 'off', required: true,
      autocapitalize: 'off'}, v.rule || ''),
    type: h('select', {name: 'reward-type'}, REWARD_TYPES.map(([val, label]) => h('option', {value: val, selected: r.type === val}, label))),
    points: h('input', {type: 'text', name: 'points', class: 'mono', spellcheck: 'false', autocomplete: 'off', value: r.points === undefined ? '' : String(r.points)}),
    expiresIn: h('input', {type: 'text', name: 'expires-in', value: r.expires_in || '', placeholder: '8760h', autocomplete: 'off'}),
    data: h('textarea', {name: 'reward-data', rows: 3, class: 'mono', spellcheck: 'false'}, r.data ? pretty(r.data) : ''),
    pool: poolSelect(pools, r.pool),
    priority: numberInput('priority', v.priority),
    exclusive: h('input', {type: 'checkbox', name: 'exclusive', checked: Boolean(v.exclusive)}),
    startsAt: h('input', {type: 'datetime-local', name: 'starts-at', value: localInput(v.starts_at)}),
    endsAt: h('input', {type: 'datetime-local', name: 'ends-at', value: localInput(v.ends_at)}),
    timeZone: h('input', {type: 'text', name: 'time-zone', value: v.time_zone || '', placeholder: 'UTC', autocomplete: 'off'}),
  };
  const limits = Object.fromEntries(LIMITS.map(([k]) => [k, numberInput(k, (v.limits || {})[k], 0)]));
  const ruleCheck = liveCheck(inputs.rule, 'rule');
  const pointsCheck = liveCheck(inputs.points, 'points');
  const pointsOnly = [
    field('Points (an integer CEL expression)', inputs.points, 'e.g. int(event.amount * 0.1) or 50; a negative result grants nothing.'),
    pointsCheck.element,
    field('Points expire after', inputs.expiresIn, 'A duration such as 720h or 8760h; empty: never.'),
  ];
  const pointsBox = h('div', {class: 'points-only'}, pointsOnly);
  const poolBox = h('div', {class: 'pool-only'}, field('Coupon code from pool', inputs.pool,
    pools.length ? 'Each reward takes one free code of the pool in its own commit; when the pool has none left the reward is refused. Pools are under Coupon pools.' :
      'No pools yet: create one under Coupon pools to hand out codes.'));
  const syncType = () => {
    pointsBox.hidden = inputs.type.value !== 'points';
    poolBox.hidden = !CODE_TYPES.includes(inputs.type.value);
  };
  inputs.type.addEventListener('change', syncType);
  syncType();

  const alerts = h('div', {class: 'alerts'});
  /** body is the campaign as the form holds it; it throws on reward data that is not JSON. */
  const body = () => {
    const out = {name: inputs.name.value.trim(), rule: inputs.rule.value, reward: {type: inputs.type.value}};
    if (isNew && inputs.id.value.trim()) out.id = inputs.id.value.trim();
    if (inputs.description.value.trim()) out.description = inputs.description.value.trim();
    if (inputs.type.value === 'points') {
      out.reward.points = inputs.points.value.trim();
      if (inputs.expiresIn.value.trim()) out.reward.expires_in = inputs.expiresIn.value.trim();
    }
    if (CODE_TYPES.includes(inputs.type.value) && inputs.pool.value) out.reward.pool = inputs.pool.value;
    if (inputs.data.value.trim()) {
      try {
        out.reward.data = JSON.parse(inputs.data.value);
      } catch (err) {
        throw new Error(`Reward data is not valid JSON: ${err.message}`);
      }
    }
    out.priority = Number(inputs.priority.value || 0);
    out.exclusive = inputs.exclusive.checked;
    if (inputs.startsAt.value) out.starts_at = new Date(`${inputs.startsAt.value}Z`).toISOString();
    if (inputs.endsAt.value) out.ends_at = new Date(`${inputs.endsAt.value}Z`).toISOString();
    if (inputs.timeZone.value.trim()) out.time_zone = inputs.timeZone.value.trim();
    out.limits = {};
    for (const [k] of LIMITS) {
      if (Number(limits[k].value) > 0) out.limits[k] = Number(limits[k].value);
    }
    return out;
  };

  const save = h('button', {type: 'submit', class: 'primary', dataset: {action: 'save'}}, isNew ? 'Save as draft' : 'Save');
  const f = h('form', {class: 'editor', novalidate: true},
    alerts,
    h('section', {class: 'card'}, h('h2', null, 'Campaign'),
      h('div', {class: 'grid-2'},
        field('Name', inputs.name),
        field('Id', inputs.id, isNew ? 'Lower-case letters, digits and dashes; made from the name when empty.' : 'The id cannot change.')),
      field('Description', inputs.description)),
    h('section', {class: 'card'}, h('h2', null, 'Rule'),
      field('When (a boolean CEL expression over event, user and now)', inputs.rule,
        'e.g. event.type == "purchase" && event.amount > 50 && user.tier == "gold". Checked as you type.'),
      ruleCheck.element),
    h('section', {class: 'card'}, h('h2', null, 'Reward'),
      h('div', {class: 'grid-2'}, field('Type', inputs.type), h('div')),
      pointsBox, poolBox,
      field('Data for downstream senders (JSON, optional)', inputs.data)),
    h('section', {class: 'card'}, h('h2', null, 'Schedule and limits'),
      h('div', {class: 'grid-2'},
        field('Starts (UTC, event time)', inputs.startsAt),
        field('Ends (UTC, excluded)', inputs.endsAt),
        field('Priority (highest first)', inputs.priority),
        field('Days counted in (IANA time zone)', inputs.timeZone, 'For the per-day limit; UTC when empty.')),
      h('label', {class: 'inline'}, inputs.exclusive, ' Exclusive: when it matches, lower-priority campaigns do not apply'),
      h('fieldset', null, h('legend', null, 'Limits (empty: none)'),
        h('div', {class: 'grid-4'}, LIMITS.map(([k, label]) => field(label, limits[k]))))),
    h('div', {class: 'actions sticky'},
      h('a', {class: 'button', href: isNew ? '#/campaigns' : campaignPath(c.id)}, 'Cancel'), save));

  f.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      alerts.replaceChildren();
      let b;
      try {
        b = body();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
        return;
      }
      if (!b.name) {
        alerts.replaceChildren(problemBox(new Error('A campaign needs a name.')));
        inputs.name.focus();
        return;
      }
      const [ruleOK, pointsOK] = await Promise.all([ruleCheck.check(),
        inputs.type.value === 'points' ? pointsCheck.check() : Promise.resolve(true)]);
      if (!ruleOK || !pointsOK) {
        alerts.replaceChildren(problemBox(new Error(ruleOK ? 'Fix the points expression first (see below it).' : 'Fix the rule first (see below it).')));
        (ruleOK ? inputs.points : inputs.rule).focus();
        return;
      }
      try {
        let saved;
        if (isNew) {
          saved = (await call('POST', '/v1/campaigns', {body: {...b, status: 'draft'}})).data;
        } else {
          saved = (await call('PUT', url`/v1/campaigns/${c.id}`, {body: b, ifMatch: c.version})).data;
        }
        notify(`Saved ${saved.name || saved.id}, version ${saved.version} (${saved.status})`);
        location.hash = campaignPath(saved.id);
      } catch (err) {
        if (err instanceof ApiError && err.status === 412) alerts.replaceChildren(await conflictBox(c.id, rerender));
        else alerts.replaceChildren(problemBox(err));
        alerts.scrollIntoView({block: 'nearest'});
      }
    });
  });

  view.append(f,
    h('section', {class: 'card'}, h('h2', null, 'Try it before saving'),
      h('p', {class: 'muted'}, 'Runs the rule and reward as written above; nothing is saved or sent.'),
      ruleTester(() => {
        const reward = {type: inputs.type.value};
        if (inputs.type.value === 'points') reward.points = inputs.points.value.trim();
        return {rule: inputs.rule.value, reward};
      })));
  if (v.rule) ruleCheck.check();
  if (r.points !== undefined && r.points !== '') pointsCheck.check();
}

/** create is the page #/campaigns/new. */
export async function create(view) {
  view.append(h('p', {class: 'crumbs'}, h('a', {href: '#/campaigns'}, 'Campaigns'), ' / new'),
    h('div', {class: 'page-head'}, heading('New campaign')),
    h('p', {class: 'muted'}, 'A new campaign is saved as a draft: it applies to no event until you activate it.'));
  form(view, null, null, await getAll('/v1/pools', 'pools'));
}

/** edit is the page #/campaigns/{id}/edit. */
export async function edit(view, [id], rerender) {
  const [c, pools] = await Promise.all([get(url`/v1/campaigns/${id}`), getAll('/v1/pools', 'pools')]);
  view.append(h('p', {class: 'crumbs'}, h('a', {href: '#/campaigns'}, 'Campaigns'), ' / ', h('a', {href: campaignPath(c.id)}, c.id), ' / edit'),
    h('div', {class: 'page-head'}, heading(`Edit ${c.name || c.id}`)),
    h('p', {class: 'muted'}, `Editing version ${c.version} (${c.status}). Saving makes a new version; the status stays.`));
  form(view, c, rerender, pools);
}
