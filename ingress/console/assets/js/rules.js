// Rule tooling shared by the editor and the campaign page: the check as you type
// (POST /v1/rules/validate) and the rule test (POST /v1/rules/test).

import {ApiError, call, post} from './api.js';
import {h, field, fmtNum, pretty, problemBox, busy, uid} from './dom.js';

const DEBOUNCE_MS = 250;

/** caretSnippet draws the source line and a caret under column (1-based), as the server's
 * snippet does, when the server sent none. */
function caretSnippet(src, line, column) {
  const text = (src.split('\n')[line - 1] || '').replace(/\r$/, '');
  const padding = Array.from(text).slice(0, column - 1).map((c) => (c === '\t' ? '\t' : ' ')).join('');
  return `${text}\n${padding.padEnd(column - 1, ' ')}^`;
}

/** offsetOf is the string index of line and column (1-based, in code points) in src. */
function offsetOf(src, line, column) {
  const lines = src.split('\n');
  let off = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
  const cps = Array.from(lines[line - 1] || '').slice(0, column - 1).join('');
  return off + cps.length;
}

/** issueView shows one compile issue: where, what, the line with a caret under the spot,
 * and a button that puts the text cursor there. */
function issueView(issue, src, input) {
  const snippet = issue.snippet || (issue.line ? caretSnippet(src, issue.line, issue.column) : '');
  const [code, caret] = snippet.split('\n');
  const where = issue.line ? `Line ${issue.line}, column ${issue.column}` : 'Error';
  return h('div', {class: 'issue', dataset: {line: issue.line || 0, column: issue.column || 0}},
    h('p', null, h('strong', {class: 'where'}, where), ': ', h('span', {class: 'message'}, issue.message)),
    snippet ? h('pre', {class: 'snippet', 'aria-label': `${where}, marked with a caret`},
      h('code', null, code), '\n', h('span', {class: 'caret'}, caret || '')) : null,
    issue.line ? h('button', {type: 'button', class: 'link', onclick: () => {
      const at = offsetOf(input.value, issue.line, issue.column);
      input.focus();
      input.setSelectionRange(at, at + 1);
    }}, `Go to line ${issue.line}, column ${issue.column}`) : null);
}

/** liveCheck validates input's expression as the admin types. kind is "rule" or
 * "points". The answer shows under it: the issues with line, column and caret, or the
 * expression's cost against the limit. It returns {element, check} where check() runs the
 * check now and resolves to whether the expression is valid (empty counts as invalid for
 * a rule, valid for points, which may be absent). */
export function liveCheck(input, kind) {
  const out = h('div', {class: 'check', 'aria-live': 'polite', id: uid('check'), dataset: {check: kind}});
  input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), out.id].filter(Boolean).join(' '));
  let seq = 0;
  let timer = null;
  let controller = null;

  const show = (state, ...nodes) => {
    out.dataset.state = state;
    out.replaceChildren(...nodes);
    input.setAttribute('aria-invalid', state === 'invalid' ? 'true' : 'false');
  };

  const check = async () => {
    clearTimeout(timer);
    const src = input.value;
    const mine = ++seq;
    if (controller) controller.abort();
    if (!src.trim()) {
      if (kind === 'rule') show('empty', h('p', {class: 'hint'}, 'Write a boolean CEL expression over event, user and now.'));
      else show('empty');
      return kind !== 'rule';
    }
    controller = new AbortController();
    show('checking', h('p', {class: 'hint'}, 'Checking…'));
    try {
      const body = kind === 'rule' ? {rule: src} : {points: src};
      const {data} = await call('POST', '/v1/rules/validate', {body, signal: controller.signal});
      if (mine !== seq) return false;
      const pct = Math.min(100, Math.round((data.cost / data.cost_limit) * 100));
      show('valid', h('p', {class: 'ok'}, h('span', {'aria-hidden': 'true'}, '✓ '), 'Valid',
        h('span', {class: 'cost'}, ` · cost ${fmtNum(data.cost)} of ${fmtNum(data.cost_limit)} (${pct}%)`)),
      h('meter', {min: 0, max: data.cost_limit, low: data.cost_limit * 0.5, high: data.cost_limit * 0.8,
        optimum: 0, value: data.cost, 'aria-label': 'Cost against the limit'}));
      return true;
    } catch (err) {
      if (err.name === 'AbortError' || mine !== seq) return false;
      const issues = err instanceof ApiError && err.problem && err.problem.errors;
      if (err instanceof ApiError && err.status === 400 && issues && issues.length) {
        show('invalid', ...issues.map((is) => issueView(is, src, input)));
      } else {
        show('error', problemBox(err));
      }
      return false;
    }
  };

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, DEBOUNCE_MS);
  });
  return {element: out, check};
}

const SAMPLE_EVENT = {id: 'try-1', type: 'purchase', amount: 120, currency: 'EUR'};
const SAMPLE_USER = {tier: '', points: 0, lifetime_points: 0, purchase_count: 0, total_spent: 0,
  event_counts: {}, rewards: {}};

function resultValue(v) {
  if (v === true) return h('span', {class: 'pill pill-true'}, 'true');
  if (v === false) return h('span', {class: 'pill pill-false'}, 'false');
  return h('span', {class: 'pill pill-error'}, String(v));
}

/** testResult shows the answer of POST /v1/rules/test: matched or not and why, the
 * points, and each clause's value. */
function testResult(r) {
  const verdict = r.matched ?
    h('p', {class: 'verdict verdict-match'}, 'Matched',
      r.points !== undefined && r.points !== null ? ` · ${fmtNum(r.points)} points` : '',
      r.reward && r.reward.type !== 'points' ? ` · ${r.reward.type}` : '') :
    h('p', {class: 'verdict verdict-miss'}, 'Not matched', r.reason ? ` — ${r.reason}` : '');
  const sources = {given: 'the state you wrote', stored: `the stored state of ${r.event.user_id}`,
    new: `a new user (${r.event.user_id} was never seen)`};
  const op = {'&&': 'every clause must be true (&&)', '||': 'one clause must be true (||)'}[r.operator] || 'one clause';
  return h('div', {class: 'test-result', dataset: {matched: String(r.matched)}},
    verdict,
    r.error ? h('p', {class: 'alert alert-error'}, r.error) : null,
    h('table', {class: 'explain'},
      h('caption', null, `Clause by clause: ${op}`),
      h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Clause'), h('th', {scope: 'col'}, 'Value'))),
      h('tbody', null, (r.explanation || []).map((c) => h('tr', null,
        h('td', null, h('code', null, c.clause)), h('td', null, resultValue(c.result)))))),
    h('p', {class: 'hint'}, `Evaluated against ${sources[r.user_source] || r.user_source}.`),
    h('details', null, h('summary', null, 'User state used'), h('pre', null, pretty(r.user))));
}

/** ruleTester tries a rule on a sample event and on a user's state: the stored state of a
 * real user, or one written here. source() answers {rule, reward} to test. */
export function ruleTester(source) {
  const userID = h('input', {type: 'text', value: 'alice', autocomplete: 'off', spellcheck: 'false', name: 'test-user'});
  const eventInput = h('textarea', {rows: 5, spellcheck: 'false', class: 'mono', name: 'test-event'}, pretty(SAMPLE_EVENT));
  const stateInput = h('textarea', {rows: 6, spellcheck: 'false', class: 'mono', name: 'test-state'}, pretty(SAMPLE_USER));
  const group = uid('who');
  const stored = h('input', {type: 'radio', name: group, value: 'stored', checked: true});
  const given = h('input', {type: 'radio', name: group, value: 'given'});
  const stateField = field('User state (JSON, the names rules use)', stateInput);
  stateField.hidden = true;
  const sync = () => {
    stateField.hidden = !given.checked;
  };
  stored.addEventListener('change', sync);
  given.addEventListener('change', sync);
  const out = h('div', {class: 'test-out', 'aria-live': 'polite'});
  const run = h('button', {type: 'submit', class: 'primary'}, 'Run test');

  const form = h('form', {class: 'tester', novalidate: true},
    h('div', {class: 'grid-2'},
      h('div', null,
        field('User id', userID, 'The event’s user_id: a real user to try the rule on their stored state.'),
        h('fieldset', null, h('legend', null, 'User state'),
          h('label', {class: 'inline'}, stored, ' The user’s stored state (a new user when never seen)'),
          h('label', {class: 'inline'}, given, ' A state I write')),
        stateField),
      field('Sample event (JSON, as a storefront sends it)', eventInput, 'id, type, amount, currency, occurred_at, attributes.')),
    h('div', {class: 'actions'}, run),
    out);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(run, async () => {
      const {rule, reward} = source();
      let ev;
      let user;
      try {
        ev = JSON.parse(eventInput.value);
        if (given.checked) user = JSON.parse(stateInput.value);
      } catch (err) {
        out.replaceChildren(problemBox(new Error(`Not valid JSON: ${err.message}`)));
        return;
      }
      if (userID.value.trim()) ev.user_id = userID.value.trim();
      if (!rule || !rule.trim()) {
        out.replaceChildren(problemBox(new Error('Write a rule first.')));
        return;
      }
      out.replaceChildren(h('p', {class: 'hint'}, 'Testing…'));
      try {
        const body = {rule, event: ev};
        if (reward) body.reward = reward;
        if (user) body.user = user;
        out.replaceChildren(testResult(await post('/v1/rules/test', body)));
      } catch (err) {
        out.replaceChildren(problemBox(err));
      }
    });
  });
  return form;
}
