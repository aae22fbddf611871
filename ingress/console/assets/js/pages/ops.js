// Operations (admin role): dead letters, the audit log, admins and API keys.

import {call, currentSession, get, post, url, query} from '../api.js';
import {h, field, pageHead, empty, fmtTime, pretty, problemBox, notify, confirmDialog, busy, tableWrap, table, badge} from '../dom.js';
import {diffView} from '../diff.js';

const PAGE = 50;

/** dlq is the page #/dlq: parked events with their reasons; replay or discard each. */
export async function dlq(view, params, rerender) {
  view.append(pageHead('Dead letters', h('button', {type: 'button', onclick: rerender}, 'Refresh')),
    h('p', {class: 'muted'}, 'Events the engine could not apply, oldest first. Replay publishes one again under its event id ' +
      '(an event applied already changes nothing); delete discards it.'));
  const alerts = h('div', {class: 'alerts'});
  const body = h('tbody');
  const more = h('button', {type: 'button'}, 'Show more');
  const holder = h('div');
  view.append(alerts, holder);
  let cursor = '';
  const row = (en) => {
    const tr = h('tr', {dataset: {dlq: en.id}});
    const act = (label, method, path, danger, question) => {
      const b = h('button', {type: 'button', class: danger ? 'danger' : ''}, label);
      b.addEventListener('click', () => busy(b, async () => {
        if (question && !(await confirmDialog(question, label, danger))) return;
        alerts.replaceChildren();
        try {
          await call(method, path);
          notify(`${label}: ${en.event_id || en.id}`);
          tr.remove();
          if (!body.children.length && !cursor) holder.replaceChildren(empty('The dead-letter queue is empty.'));
        } catch (err) {
          alerts.replaceChildren(problemBox(err));
        }
      }));
      return b;
    };
    tr.append(
      h('td', null, fmtTime(en.parked_at)),
      h('td', {class: 'reason'}, en.reason),
      h('td', null, h('code', {class: 'small'}, en.event_id || '—'), h('div', {class: 'muted small'}, `${en.subject} · partition ${en.partition}`)),
      h('td', {class: 'num'}, String(en.deliveries)),
      h('td', null, h('details', null, h('summary', null, 'event'), h('pre', null, typeof en.event === 'string' ? en.event : pretty(en.event)))),
      h('td', {class: 'row-actions'},
        act('Replay', 'POST', url`/v1/dlq/${en.id}/replay`, false, null),
        act('Delete', 'DELETE', url`/v1/dlq/${en.id}`, true, `Discard the parked event ${en.event_id || en.id}? It cannot be replayed afterwards.`)));
    return tr;
  };
  const next = async () => {
    const page = await get(query('/v1/dlq', {limit: PAGE, cursor}));
    for (const en of page.entries) body.append(row(en));
    cursor = page.next_cursor || '';
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => busy(more, next));
  await next();
  if (!body.children.length) {
    holder.append(empty('The dead-letter queue is empty: every event was applied or refused cleanly.'));
    return;
  }
  holder.append(tableWrap('Dead letters', h('table', null, h('caption', {class: 'visually-hidden'}, 'Dead letters'),
    h('thead', null, h('tr', null, ['Parked', 'Reason', 'Event', 'Deliveries', 'Payload', ''].map((t) => h('th', {scope: 'col'}, t)))), body)), more);
}

function jsonText(v) {
  return v === undefined || v === null ? '' : pretty(v);
}

/** audit is the page #/audit: every change, filtered by who, what kind and which. */
export async function audit(view) {
  const actor = h('input', {type: 'text', name: 'actor', autocomplete: 'off'});
  const targetType = h('select', {name: 'target_type'}, ['', 'campaign', 'admin', 'api_key', 'user', 'tiers', 'dlq'].map((t) =>
    h('option', {value: t}, t || 'any')));
  const targetID = h('input', {type: 'text', name: 'target_id', autocomplete: 'off'});
  const filters = h('form', {class: 'inline-form', role: 'search'},
    field('Admin', actor), field('Target type', targetType), field('Target id', targetID),
    h('button', {type: 'submit', class: 'primary'}, 'Filter'));
  const holder = h('div');
  view.append(pageHead('Audit log'), h('p', {class: 'muted'}, 'Every change made through the API, oldest first.'), filters, holder);
  let cursor = '';
  let body;
  let more;
  const next = async () => {
    const page = await get(query('/v1/audit', {actor: actor.value.trim(), target_type: targetType.value,
      target_id: targetID.value.trim(), limit: PAGE, cursor}));
    for (const en of page.entries) {
      const change = en.before || en.after ?
        h('details', null, h('summary', null, 'before / after'), diffView('Before', jsonText(en.before), 'After', jsonText(en.after))) : '';
      body.append(h('tr', {dataset: {audit: en.id}},
        h('td', null, fmtTime(en.created_at)), h('td', null, en.actor), h('td', null, h('code', null, en.action)),
        h('td', null, `${en.target_type} `, h('code', {class: 'small'}, en.target_id)), h('td', null, change)));
    }
    cursor = page.next_cursor || '';
    more.hidden = !cursor;
  };
  const reload = async () => {
    cursor = '';
    body = h('tbody');
    more = h('button', {type: 'button'}, 'Show more');
    more.addEventListener('click', () => busy(more, next));
    holder.replaceChildren(h('p', {class: 'loading'}, 'Loading…'));
    try {
      await next();
    } catch (err) {
      holder.replaceChildren(problemBox(err));
      return;
    }
    holder.replaceChildren(body.children.length ?
      h('div', null, tableWrap('Audit log', h('table', null, h('caption', {class: 'visually-hidden'}, 'Audit log'),
        h('thead', null, h('tr', null, ['When', 'Admin', 'Action', 'Target', 'Change'].map((t) => h('th', {scope: 'col'}, t)))), body)), more) :
      empty('No changes match these filters.'));
  };
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    reload();
  });
  await reload();
}

const ROLES = ['viewer', 'editor', 'admin'];

/** admins is the page #/admins: who may use the console and the API, and with which role. */
export async function admins(view, params, rerender) {
  const {admins: list} = await get('/v1/admins');
  const me = currentSession().username;
  const alerts = h('div', {class: 'alerts'});
  const rows = list.map((a) => {
    const role = h('select', {'aria-label': `Role of ${a.username}`, disabled: a.username === me,
      title: a.username === me ? 'Another admin changes your role' : null}, ROLES.map((r) => h('option', {value: r, selected: a.role === r}, r)));
    const patch = async (body, what) => {
      alerts.replaceChildren();
      try {
        await call('PATCH', url`/v1/admins/${a.username}`, {body});
        notify(`${a.username}: ${what}`);
        rerender();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    };
    role.addEventListener('change', () => patch({role: role.value}, `role ${role.value}`));
    const toggle = h('button', {type: 'button', class: a.disabled ? '' : 'danger'}, a.disabled ? 'Enable' : 'Disable');
    toggle.addEventListener('click', () => busy(toggle, async () => {
      if (!a.disabled && !(await confirmDialog(`Disable ${a.username}? Their tokens stop working at once.`, 'Disable', true))) return;
      await patch({disabled: !a.disabled}, a.disabled ? 'enabled' : 'disabled');
    }));
    return h('tr', {dataset: {admin: a.username}},
      h('td', null, a.username, a.username === me ? h('span', {class: 'muted'}, ' (you)') : null),
      h('td', null, role), h('td', null, a.disabled ? badge('disabled') : badge('enabled')),
      h('td', null, fmtTime(a.created_at)), h('td', {class: 'row-actions'}, a.username === me ? '' : toggle));
  });
  const username = h('input', {type: 'text', name: 'username', required: true, autocomplete: 'off'});
  const password = h('input', {type: 'password', name: 'password', required: true, minlength: '12', maxlength: '72', autocomplete: 'new-password'});
  const newRole = h('select', {name: 'role'}, ROLES.map((r) => h('option', {value: r}, r)));
  const add = h('button', {type: 'submit', class: 'primary'}, 'Create admin');
  const form = h('form', {class: 'inline-form'}, field('Username', username), field('Password (12 characters to 72 bytes, not a common one)', password), field('Role', newRole), add);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(add, async () => {
      alerts.replaceChildren();
      try {
        await post('/v1/admins', {username: username.value.trim(), password: password.value, role: newRole.value});
        notify(`Created ${username.value.trim()} (${newRole.value})`);
        rerender();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  view.append(pageHead('Admins'),
    h('p', {class: 'muted'}, 'viewer: reads and rule tests · editor: also changes campaigns · admin: everything, including this page.'),
    alerts,
    tableWrap('Admins', table('Admins', ['Username', 'Role', 'State', 'Created', ''], rows)),
    h('section', {class: 'card'}, h('h2', null, 'New admin'), form));
}

/** keys is the page #/keys: the storefronts' ingest keys. */
export async function keys(view, params, rerender) {
  const {api_keys: list} = await get('/v1/api-keys');
  const alerts = h('div', {class: 'alerts'});
  const name = h('input', {type: 'text', name: 'name', required: true, autocomplete: 'off', maxlength: '200'});
  const add = h('button', {type: 'submit', class: 'primary'}, 'Create key');
  const form = h('form', {class: 'inline-form'}, field('Name (e.g. the shop)', name), add);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(add, async () => {
      alerts.replaceChildren();
      try {
        const k = await post('/v1/api-keys', {name: name.value.trim()});
        const secret = h('input', {type: 'text', readonly: true, value: k.key, class: 'mono secret', 'aria-label': 'The new key'});
        alerts.replaceChildren(h('div', {class: 'alert alert-ok', role: 'status'},
          h('p', null, h('strong', null, `Key for ${k.name}: `), 'copy it now, it is shown only once. The storefront sends it as Authorization: ApiKey <key>.'),
          secret, h('button', {type: 'button', onclick: rerender}, 'Done')));
        secret.focus();
        secret.select();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    });
  });
  const rows = list.map((k) => {
    const revoke = h('button', {type: 'button', class: 'danger'}, 'Revoke');
    revoke.addEventListener('click', () => busy(revoke, async () => {
      if (!(await confirmDialog(`Revoke ${k.name} (${k.prefix}…)? Storefronts using it are refused at once.`, 'Revoke', true))) return;
      try {
        await call('DELETE', url`/v1/api-keys/${k.id}`);
        notify(`Revoked ${k.name}`);
        rerender();
      } catch (err) {
        alerts.replaceChildren(problemBox(err));
      }
    }));
    return h('tr', {dataset: {key: k.id}}, h('td', null, k.name), h('td', null, h('code', null, `${k.prefix}…`)),
      h('td', null, k.created_by), h('td', null, fmtTime(k.created_at)),
      h('td', null, k.revoked_at ? badge('revoked') : badge('active')),
      h('td', {class: 'row-actions'}, k.revoked_at ? fmtTime(k.revoked_at) : revoke));
  });
  view.append(pageHead('API keys'),
    h('p', {class: 'muted'}, 'Storefronts post events with these keys. A key is shown once, when it is created.'),
    alerts,
    h('section', {class: 'card'}, h('h2', null, 'New key'), form),
    list.length ? tableWrap('API keys', table('API keys', ['Name', 'Prefix', 'Created by', 'Created', 'State', ''], rows)) :
      empty('No API keys yet: create one for each storefront.'));
}
