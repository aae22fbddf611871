// The campaign list: status, priority, schedule, reward and what each granted today.

import {can, get, getAll, url} from '../api.js';
import {h, pageHead, empty, badge, tableWrap, table, fmtNum, todayUTC, fmtTime} from '../dom.js';

/** schedule says when a campaign applies, by event time. */
export function schedule(c) {
  const day = (t) => fmtTime(t).replace(' UTC', '');
  if (c.starts_at && c.ends_at) return `${day(c.starts_at)} → ${day(c.ends_at)}`;
  if (c.starts_at) return `from ${day(c.starts_at)}`;
  if (c.ends_at) return `until ${day(c.ends_at)}`;
  return 'always';
}

/** rewardText sums up a reward in a few words. */
export function rewardText(r) {
  if (!r) return '';
  if (r.type === 'points') return `points: ${r.points}${r.expires_in ? `, expire after ${r.expires_in}` : ''}`;
  return r.type.replace('_', ' ') + (r.pool ? `, code from ${r.pool}` : '');
}

/** statsLimit is how many stats requests the list sends at once. */
const statsLimit = 4;

async function fillToday(rows) {
  const today = todayUTC();
  const queue = rows.slice();
  const worker = async () => {
    while (queue.length) {
      const {id, cell} = queue.shift();
      try {
        const st = await get(url`/v1/campaigns/${id}/stats`);
        const d = (st.daily || []).find((x) => x.day === today) || {rewards: 0, points: 0};
        cell.replaceChildren(h('span', {class: 'today', dataset: {rewards: d.rewards, points: d.points}},
          `${fmtNum(d.rewards)} rewards · ${fmtNum(d.points)} points`));
      } catch {
        cell.replaceChildren(h('span', {class: 'muted'}, 'unavailable'));
      }
    }
  };
  await Promise.all(Array.from({length: statsLimit}, worker));
}

/** list is the page #/campaigns. */
export async function list(view) {
  const create = can('editor') ? h('a', {class: 'button primary', href: '#/campaigns/new', dataset: {edit: ''}}, 'New campaign') : null;
  view.append(pageHead('Campaigns', create));
  const campaigns = await getAll('/v1/campaigns', 'campaigns');
  if (!campaigns.length) {
    view.append(empty(can('editor') ? 'No campaigns yet. Create the first one: a rule, a reward, and it is live once you activate it.' :
      'No campaigns yet. An editor or admin can create them.', create && h('a', {class: 'button', href: '#/campaigns/new'}, 'Create a campaign')));
    return;
  }
  const showArchived = h('input', {type: 'checkbox', id: 'show-archived'});
  const holder = h('div');
  const order = {active: 0, paused: 1, draft: 2, archived: 3};
  const sorted = campaigns.slice().sort((a, b) => (order[a.status] - order[b.status]) || (b.priority - a.priority) || a.id.localeCompare(b.id));
  const draw = () => {
    const shown = sorted.filter((c) => showArchived.checked || c.status !== 'archived');
    if (!shown.length) {
      holder.replaceChildren(empty('Every campaign is archived. Tick “Show archived” to see them.'));
      return;
    }
    const todays = [];
    const rows = shown.map((c) => {
      const cell = h('td', {class: 'num'}, h('span', {class: 'muted'}, '…'));
      todays.push({id: c.id, cell});
      return h('tr', {dataset: {campaign: c.id}},
        h('td', null, h('a', {href: `#/campaigns/${encodeURIComponent(c.id)}`}, c.name || c.id), h('div', {class: 'muted small'}, c.id)),
        h('td', null, badge(c.status)),
        h('td', {class: 'num'}, String(c.priority || 0), c.exclusive ? h('div', {class: 'muted small'}, 'exclusive') : null),
        h('td', null, schedule(c)),
        h('td', null, h('code', {class: 'small'}, rewardText(c.reward))),
        cell);
    });
    holder.replaceChildren(tableWrap('Campaigns', table('Campaigns',
      ['Campaign', 'Status', 'Priority', 'Schedule', 'Reward', 'Today (UTC)'], rows)));
    fillToday(todays);
  };
  showArchived.addEventListener('change', draw);
  const archived = campaigns.filter((c) => c.status === 'archived').length;
  view.append(h('div', {class: 'toolbar'},
    h('p', {class: 'muted'}, `${campaigns.length} campaign${campaigns.length === 1 ? '' : 's'}, highest priority first within each status.`),
    archived ? h('label', {class: 'inline'}, showArchived, ` Show archived (${archived})`) : null), holder);
  draw();
}
