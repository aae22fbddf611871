// The console's entry point: the login screen, the navigation and the router. Pages live
// at #/… addresses (hash routing), so the server serves one page and its assets only,
// and the browser's back and forward buttons work.

import {can, currentSession, login, logout, onSessionChange} from './api.js';
import {h, fill, field, heading, problemBox, loading} from './dom.js';
import * as campaigns from './pages/campaigns.js';
import * as campaign from './pages/campaign.js';
import * as editor from './pages/editor.js';
import * as users from './pages/users.js';
import * as pools from './pages/pools.js';
import * as webhooks from './pages/webhooks.js';
import * as tiers from './pages/tiers.js';
import * as ops from './pages/ops.js';

/** routes map an address to its page and the least role that may see it. */
const routes = [
  {re: /^\/campaigns$/, page: campaigns.list, title: 'Campaigns', nav: 'campaigns'},
  {re: /^\/campaigns\/new$/, page: editor.create, role: 'editor', title: 'New campaign', nav: 'campaigns'},
  {re: /^\/campaigns\/([^/]+)$/, page: campaign.overview, title: 'Campaign', nav: 'campaigns'},
  {re: /^\/campaigns\/([^/]+)\/results$/, page: campaign.results, title: 'Results', nav: 'campaigns'},
  {re: /^\/campaigns\/([^/]+)\/test$/, page: campaign.test, title: 'Try a campaign', nav: 'campaigns'},
  {re: /^\/campaigns\/([^/]+)\/history$/, page: campaign.history, title: 'History', nav: 'campaigns'},
  {re: /^\/campaigns\/([^/]+)\/edit$/, page: editor.edit, role: 'editor', title: 'Edit campaign', nav: 'campaigns'},
  {re: /^\/pools$/, page: pools.list, title: 'Coupon pools', nav: 'pools'},
  {re: /^\/pools\/([^/]+)$/, page: pools.show, title: 'Coupon pool', nav: 'pools'},
  {re: /^\/tiers$/, page: tiers.show, title: 'Tiers', nav: 'tiers'},
  {re: /^\/users$/, page: users.search, title: 'Users', nav: 'users'},
  {re: /^\/users\/(.+)$/, page: users.show, title: 'User', nav: 'users'},
  {re: /^\/dlq$/, page: ops.dlq, role: 'admin', title: 'Dead letters', nav: 'dlq'},
  {re: /^\/audit$/, page: ops.audit, role: 'admin', title: 'Audit log', nav: 'audit'},
  {re: /^\/admins$/, page: ops.admins, role: 'admin', title: 'Admins', nav: 'admins'},
  {re: /^\/keys$/, page: ops.keys, role: 'admin', title: 'API keys', nav: 'keys'},
  {re: /^\/webhooks$/, page: webhooks.list, role: 'admin', title: 'Webhooks', nav: 'webhooks'},
  {re: /^\/webhooks\/([^/]+)$/, page: webhooks.show, role: 'admin', title: 'Webhook', nav: 'webhooks'},
];

/** navItems are the navigation's links; a role below an item's does not see it. */
const navItems = [
  {key: 'campaigns', href: '#/campaigns', label: 'Campaigns', role: 'viewer'},
  {key: 'pools', href: '#/pools', label: 'Coupon pools', role: 'viewer'},
  {key: 'tiers', href: '#/tiers', label: 'Tiers', role: 'viewer'},
  {key: 'users', href: '#/users', label: 'Users', role: 'viewer'},
  {key: 'dlq', href: '#/dlq', label: 'Dead letters', role: 'admin', group: 'Operations'},
  {key: 'audit', href: '#/audit', label: 'Audit log', role: 'admin', group: 'Operations'},
  {key: 'admins', href: '#/admins', label: 'Admins', role: 'admin', group: 'Operations'},
  {key: 'keys', href: '#/keys', label: 'API keys', role: 'admin', group: 'Operations'},
  {key: 'webhooks', href: '#/webhooks', label: 'Webhooks', role: 'admin', group: 'Operations'},
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

let loginNotice = '';

function currentPath() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/campaigns';
  return hash.split('?')[0];
}

function drawChrome(active) {
  const s = currentSession();
  document.body.dataset.role = s ? s.role : '';
  if (!s) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const items = navItems.filter((it) => can(it.role));
  const link = (it) => h('li', null, h('a', {href: it.href, 'aria-current': it.key === active ? 'page' : null, dataset: {nav: it.key}}, it.label));
  const plain = items.filter((it) => !it.group);
  const grouped = items.filter((it) => it.group);
  fill(nav, h('ul', null, plain.map(link)),
    grouped.length ? [h('p', {class: 'nav-group', id: 'nav-ops'}, 'Operations'), h('ul', {'aria-labelledby': 'nav-ops'}, grouped.map(link))] : null);
  const out = h('button', {type: 'button', class: 'link'}, 'Log out');
  out.addEventListener('click', () => logout('logout'));
  who.replaceChildren(h('span', {class: 'user'}, s.username), h('span', {class: `badge badge-role`, dataset: {role: s.role}}, s.role), out);
}

function loginPage() {
  shownPath = '';
  document.title = 'Log in · Campaign Manager';
  drawChrome('');
  const username = h('input', {type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false'});
  const password = h('input', {type: 'password', name: 'password', autocomplete: 'current-password', required: true});
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Log in');
  const errors = h('div', {class: 'alerts', 'aria-live': 'assertive'});
  const form = h('form', {class: 'login card', id: 'login'},
    heading('Log in'),
    h('p', {class: 'muted'}, 'With your Campaign Manager admin account. The session lasts 15 minutes and ends when you reload the page.'),
    loginNotice ? h('p', {class: 'alert alert-warn', role: 'status'}, loginNotice) : null,
    errors, field('Username', username), field('Password', password), h('div', {class: 'actions'}, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    errors.replaceChildren();
    try {
      await login(username.value.trim(), password.value);
      loginNotice = '';
    } catch (err) {
      let box = problemBox(err);
      if (err.status === 401) box = problemBox(new Error('Wrong username or password.'));
      else if (err.status === 429) box = problemBox(new Error('Too many attempts: wait a minute and try again.'));
      errors.replaceChildren(box);
      password.select();
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  username.focus();
}

function notAllowed(view, route) {
  const s = currentSession();
  view.append(heading(route.title), h('div', {class: 'empty'},
    h('p', null, `Your role (${s.role}) may not open this page; it needs ${route.role}.`),
    h('a', {class: 'button', href: '#/campaigns'}, 'Back to campaigns')));
}

function notFound(view) {
  view.append(heading('Not found'), h('div', {class: 'empty'}, h('p', null, 'The console has no page at this address.'),
    h('a', {class: 'button', href: '#/campaigns'}, 'Go to campaigns')));
}

let generation = 0;
let shownPath = '';

/** render draws the page of the current address. A page renders into a fresh element
 * that replaces the last only once it is built; a page that finishes after the admin
 * went elsewhere is dropped. */
async function render() {
  if (!currentSession()) {
    loginPage();
    return;
  }
  const path = currentPath();
  const mine = ++generation;
  let route = null;
  let params = [];
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      route = r;
      params = m.slice(1).map((p) => decodeURIComponent(p));
      break;
    }
  }
  drawChrome(route ? route.nav : '');
  document.title = `${route ? route.title : 'Not found'} · Campaign Manager`;
  const view = h('div', {class: 'view', dataset: {page: path}});
  main.setAttribute('aria-busy', 'true');
  const placeholder = setTimeout(() => {
    if (mine === generation) main.replaceChildren(loading());
  }, 150);
  try {
    if (!route) notFound(view);
    else if (route.role && !can(route.role)) notAllowed(view, route);
    else await route.page(view, params, render);
  } catch (err) {
    if (!currentSession()) return; // the session ended: the login page is up
    view.append(heading(route ? route.title : 'Error'), problemBox(err));
  } finally {
    clearTimeout(placeholder);
  }
  if (mine !== generation) return;
  main.removeAttribute('aria-busy');
  // Focus the new page's heading, so a screen reader announces it, when the address
  // changed or the focus was lost with the old page (not while the admin is elsewhere).
  const moved = path !== shownPath;
  shownPath = path;
  const lost = main.contains(document.activeElement) || document.activeElement === document.body;
  main.replaceChildren(view);
  view.dataset.ready = 'true';
  const h1 = view.querySelector('h1');
  if (h1 && (moved || lost)) h1.focus({preventScroll: true});
}

onSessionChange((reason) => {
  if (reason === 'expired') loginNotice = 'Your session ended. Log in again to go on where you were.';
  else if (reason === 'logout') {
    loginNotice = '';
    if (location.hash !== '#/campaigns') history.replaceState(null, '', '#/campaigns');
  }
  render();
});

window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/') || location.hash === '') render();
});

document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  const h1 = main.querySelector('h1');
  (h1 || main).focus();
});

render();
