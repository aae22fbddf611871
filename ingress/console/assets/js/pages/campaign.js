// One campaign: its definition and status actions, its results (stats and the chart per
// day), the rule tester, and its version history with a side-by-side diff.

import {ApiError, can, call, get, url} from '../api.js';
import {h, heading, badge, fmtNum, fmtTime, pretty, problemBox, notify, confirmDialog, busy, empty, tableWrap, table} from '../dom.js';
import {barChart} from '../chart.js';
import {diffView} from '../diff.js';
import {ruleTester} from '../rules.js';
import {schedule, rewardText} from './campaigns.js';
import {poolPath} from './pools.js';

/** campaignPath is the console address of a campaign's page (tab: "", results, test, history, edit). */
export function campaignPath(id, tab = '') {
  return `#/campaigns/${encodeURIComponent(id)}${tab ? `/${tab}` : ''}`;
}

/** conflictBox explains a 412: who saved the campaign since it was loaded (from its
 * versions), with a button that reloads it. */
export async function conflictBox(id, reload) {
  let who = 'someone else';
  let what = '';
  try {
    const {versions} = await get(url`/v1/campaigns/${id}/versions`);
    const last = versions[versions.length - 1];
    if (last) {
      who = last.created_by;
      what = ` (version ${last.version}, ${fmtTime(last.created_at)})`;
    }
  } catch {
    // The explanation stays generic.
  }
  return h('div', {class: 'alert alert-warn', role: 'alert', dataset: {conflict: who}},
    h('p', null, h('strong', null, `Changed by ${who}`), `${what} since you opened it, so nothing was saved. `,
      'Reload to see their change, then make yours again.'),
    h('button', {type: 'button', class: 'primary', onclick: reload}, 'Reload'));
}

/** header is the campaign's title, status, the actions the admin's role allows, and the
 * tabs. status changes send If-Match with the version shown, so a change made meanwhile
 * by someone else is reported, not overwritten. */
function header(view, c, tab, rerender) {
  const alerts = h('div', {class: 'alerts'});
  const act = (label, path, opts = {}) => {
    const b = h('button', {type: 'button', class: opts.danger ? 'danger' : (opts.primary ? 'primary' : ''), dataset: {action: label.toLowerCase()}});
    b.textContent = label;
    b.addEventListener('click', () => busy(b, async () => {
      if (opts.confirm && !(await confirmDialog(opts.confirm, label, opts.danger))) return;
      alerts.replaceChildren();
      try {
        const res = await call(opts.method || 'POST', path, {ifMatch: c.version});
        notify(`${c.name || c.id}: ${res.data.status} (version ${res.data.version})`);
        rerender();
      } catch (err) {
        if (err instanceof ApiError && err.status === 412) alerts.replaceChildren(await conflictBox(c.id, rerender));
        else alerts.replaceChildren(problemBox(err));
      }
    }));
    return b;
  };
  const actions = [];
  if (can('editor')) {
    actions.push(h('a', {class: 'button', href: campaignPath(c.id, 'edit'), dataset: {action: 'edit'}}, 'Edit'));
    if (c.status !== 'active' && c.status !== 'archived') actions.push(act('Activate', url`/v1/campaigns/${c.id}/activate`, {primary: true}));
    if (c.status === 'active') actions.push(act('Pause', url`/v1/campaigns/${c.id}/pause`));
    if (c.status !== 'archived') {
      actions.push(act('Archive', url`/v1/campaigns/${c.id}`, {method: 'DELETE', danger: true,
        confirm: `Archive ${c.name || c.id}? It stops matching at once; only editing it brings it back.`}));
    }
  }
  const tabs = [['', 'Overview'], ['results', 'Results'], ['test', 'Try it'], ['history', 'History']];
  view.append(
    h('p', {class: 'crumbs'}, h('a', {href: '#/campaigns'}, 'Campaigns'), ' / ', c.id),
    h('div', {class: 'page-head'},
      heading(c.name || c.id, ' ', badge(c.status)),
      h('div', {class: 'actions'}, actions)),
    h('p', {class: 'muted'}, `${c.id} · version ${c.version}${c.updated_at ? ` · saved ${fmtTime(c.updated_at)}` : ''}`),
    alerts,
    h('nav', {class: 'tabs', 'aria-label': 'Campaign'}, tabs.map(([t, label]) =>
      h('a', {href: campaignPath(c.id, t), 'aria-current': t === tab ? 'page' : null}, label))));
}

async function load(id) {
  return get(url`/v1/campaigns/${id}`);
}

function dl(pairs) {
  return h('dl', {class: 'props'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function limitsText(l) {
  const parts = [];
  if (l && l.per_user) parts.push(`${fmtNum(l.per_user)} per user`);
  if (l && l.per_user_per_day) parts.push(`${fmtNum(l.per_user_per_day)} per user per day`);
  if (l && l.total_rewards) parts.push(`${fmtNum(l.total_rewards)} rewards in total`);
  if (l && l.total_points) parts.push(`${fmtNum(l.total_points)} points in total`);
  return parts.length ? parts.join(' · ') : 'none';
}

/** overview is the page #/campaigns/{id}: what the campaign does. */
export async function overview(view, [id], rerender) {
  const c = await load(id);
  header(view, c, '', rerender);
  const r = c.reward || {};
  view.append(h('section', {class: 'card'},
    h('h2', null, 'Definition'),
    dl([
      c.description ? ['Description', c.description] : null,
      ['Rule', h('pre', {class: 'code-block'}, h('code', null, c.rule))],
      ['Reward', h('code', null, rewardText(r))],
      r.pool ? ['Coupon codes from', h('a', {href: poolPath(r.pool)}, r.pool)] : null,
      r.data ? ['Reward data', h('pre', {class: 'code-block'}, pretty(r.data))] : null,
      ['Schedule', `${schedule(c)} (event time)`],
      ['Priority', `${c.priority || 0}${c.exclusive ? ', exclusive: lower-priority campaigns do not apply when it matches' : ''}`],
      ['Limits', limitsText(c.limits)],
      ['Days counted in', c.time_zone || 'UTC'],
      ['Created', fmtTime(c.created_at)],
    ])));
}

function budgetRow(label, used, total, unit) {
  if (!total) {
    return h('div', {class: 'budget'}, h('p', null, h('strong', null, label), ` ${fmtNum(used)} ${unit} used · no limit`));
  }
  const left = Math.max(total - used, 0);
  return h('div', {class: 'budget', dataset: {budget: unit}},
    h('p', null, h('strong', null, label), ` ${fmtNum(used)} of ${fmtNum(total)} ${unit} used · ${fmtNum(left)} left`),
    h('meter', {min: 0, max: total, value: Math.min(used, total), high: total * 0.9, optimum: 0, 'aria-label': `${label} used`}));
}

/** poolCard shows the codes left in the pool a campaign's rewards take codes from and the
 * rewards refused for lack of them. */
function poolCard(st) {
  const p = st.pool;
  const refused = st.rewards_refused || 0;
  let warn = null;
  if (p.left === 0) warn = h('p', {class: 'alert alert-warn'}, 'The pool is empty: rewards are refused until codes are added.');
  else if (p.low) warn = h('p', {class: 'alert alert-warn'}, 'The pool is low: add codes before it runs out.');
  return h('section', {class: 'card', id: 'campaign-pool', dataset: {left: p.left, refused}}, h('h2', null, 'Coupon codes'),
    h('p', null, 'From pool ', h('a', {href: poolPath(p.id)}, p.id), `: ${fmtNum(p.left)} left, low at ${fmtNum(p.low_water)}.`),
    warn,
    h('p', null, refused ? `${fmtNum(refused)} rewards refused for lack of codes.` : 'No reward refused for lack of codes.'));
}

/** results is the page #/campaigns/{id}/results: totals, today, budget and the chart of
 * rewards and points per day. */
export async function results(view, [id], rerender) {
  const [c, st] = await Promise.all([load(id), get(url`/v1/campaigns/${id}/stats`)]);
  header(view, c, 'results', rerender);
  const daily = st.daily || [];
  const today = daily[daily.length - 1] || {rewards: 0, points: 0};
  const card = (label, value, key) => h('div', {class: 'stat', dataset: {stat: key}}, h('p', {class: 'stat-label'}, label), h('p', {class: 'stat-value'}, fmtNum(value)));
  view.append(
    h('section', {class: 'stats'},
      card('Rewards', st.rewards, 'rewards'), card('Users rewarded', st.users, 'users'),
      card('Points granted', st.points_granted, 'points'),
      card('Rewards today', today.rewards, 'today-rewards'), card('Points today', today.points, 'today-points')),
    h('section', {class: 'card'}, h('h2', null, 'Budget'),
      budgetRow('Rewards', st.budget.rewards_used, st.budget.total_rewards, 'rewards'),
      budgetRow('Points', st.budget.points_used, st.budget.total_points, 'points'),
      st.budget.exhausted ? h('p', {class: 'alert alert-warn'}, 'The budget is spent: the campaign no longer matches.') : null),
    st.pool ? poolCard(st) : null,
    h('section', {class: 'card'}, h('h2', null, 'Per day (UTC, by event time)'),
      st.rewards === 0 ? h('p', {class: 'muted'}, 'Nothing granted yet: the bars fill in as events match.') : null,
      h('div', {class: 'charts'},
        barChart('Rewards per day', daily.map((d) => ({day: d.day, value: d.rewards})), 'rewards', 'rewards'),
        barChart('Points per day', daily.map((d) => ({day: d.day, value: d.points})), 'points', 'points'))));
}

/** test is the page #/campaigns/{id}/test: the saved rule on a sample event and a user. */
export async function test(view, [id], rerender) {
  const c = await load(id);
  header(view, c, 'test', rerender);
  view.append(h('section', {class: 'card'}, h('h2', null, 'Try the saved rule'),
    h('p', {class: 'muted'}, 'Nothing is stored or sent: the rule and reward run on this event and state only.'),
    h('pre', {class: 'code-block'}, h('code', null, c.rule)),
    ruleTester(() => ({rule: c.rule, reward: c.reward}))));
}

/** versionText is a saved version as the diff compares it (the bookkeeping left out). */
function versionText(v) {
  const {version, created_at: created, updated_at: updated, ...rest} = v.campaign;
  return pretty(rest);
}

/** history is the page #/campaigns/{id}/history: every version, two side by side. */
export async function history(view, [id], rerender) {
  const [c, {versions}] = await Promise.all([load(id), get(url`/v1/campaigns/${id}/versions`)]);
  header(view, c, 'history', rerender);
  if (!versions.length) {
    view.append(empty('No versions saved.'));
    return;
  }
  const pick = (label, selected) => h('select', {'aria-label': label},
    versions.map((v) => h('option', {value: String(v.version), selected: v.version === selected}, `version ${v.version}`)));
  const latest = versions[versions.length - 1].version;
  const left = pick('Left version', Math.max(latest - 1, versions[0].version));
  const right = pick('Right version', latest);
  const out = h('div');
  const draw = () => {
    const a = versions.find((v) => String(v.version) === left.value);
    const b = versions.find((v) => String(v.version) === right.value);
    out.replaceChildren(diffView(`Version ${a.version} · ${a.created_by}`, versionText(a), `Version ${b.version} · ${b.created_by}`, versionText(b)));
  };
  left.addEventListener('change', draw);
  right.addEventListener('change', draw);
  view.append(
    h('section', {class: 'card'}, h('h2', null, 'Versions'),
      tableWrap('Versions', table('Versions', ['Version', 'Status', 'Saved by', 'Saved at', ''], versions.slice().reverse().map((v) =>
        h('tr', null, h('td', {class: 'num'}, String(v.version)), h('td', null, badge(v.campaign.status)),
          h('td', null, v.created_by), h('td', null, fmtTime(v.created_at)),
          h('td', null, v.version === versions[0].version ? '' : h('button', {type: 'button', class: 'link', onclick: () => {
            right.value = String(v.version);
            left.value = String(Math.max(v.version - 1, versions[0].version));
            draw();
            out.scrollIntoView({block: 'nearest'});
          }}, 'Compare with previous'))))))),
    h('section', {class: 'card'}, h('h2', null, 'Compare'),
      h('div', {class: 'toolbar start'}, left, h('span', null, 'with'), right), out));
  draw();
}
