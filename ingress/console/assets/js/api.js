// The console's only way to the server: the REST API, with the admin's JWT.
//
// The token lives in this module's memory only: not in localStorage, sessionStorage or a
// cookie, so another tab or a script reading storage cannot find it, and a reload means
// logging in again. Roles here only decide what the console offers; the server checks
// every call.

const RANKS = {viewer: 1, editor: 2, admin: 3};

let session = null;
const listeners = new Set();

/** ApiError is a failed call: the HTTP status and the problem details (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** currentSession is {username, role, expiresAt} of the logged-in admin, or null. */
export function currentSession() {
  return session && {username: session.username, role: session.role, expiresAt: session.expiresAt};
}

/** onSessionChange calls f(reason) when the admin logs in or out ("expired" when the
 * server refused the token). */
export function onSessionChange(f) {
  listeners.add(f);
}

function emit(reason) {
  for (const f of listeners) f(reason);
}

/** can reports whether the logged-in admin's role reaches level (viewer, editor, admin). */
export function can(level) {
  return Boolean(session) && (RANKS[session.role] || 0) >= RANKS[level];
}

function claimsOf(token) {
  const part = token.split('.')[1] || '';
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const json = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  return JSON.parse(json);
}

async function readBody(res) {
  const type = res.headers.get('Content-Type') || '';
  if (res.status === 204 || res.status === 304) return null;
  if (type.includes('json')) {
    try {
      return await res.json();
    } catch {
      return null;
    }
  }
  const text = await res.text();
  return text ? {title: res.statusText, detail: text} : null;
}

/** login exchanges a username and password for a token (POST /v1/auth/token). */
export async function login(username, password) {
  const res = await fetch('/v1/auth/token', {
    method: 'POST', cache: 'no-store', credentials: 'omit',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({username, password}),
  });
  const body = await readBody(res);
  if (!res.ok) throw new ApiError(res.status, body);
  const claims = claimsOf(body.access_token);
  session = {token: body.access_token, username: claims.sub, role: claims.role,
    expiresAt: Date.now() + body.expires_in * 1000};
  emit('login');
}

/** logout forgets the token. */
export function logout(reason = 'logout') {
  session = null;
  emit(reason);
}

/** call sends one API request with the token and answers {status, data, etag}; a failure
 * throws an ApiError. A 401 ends the session (the token expired or the admin was
 * disabled). opts: body (sent as JSON), ifMatch (a version), signal. */
export async function call(method, path, opts = {}) {
  if (!session) throw new ApiError(401, {title: 'Not logged in'});
  const headers = {Authorization: `Bearer ${session.token}`, Accept: 'application/json'};
  const init = {method, headers, cache: 'no-store', credentials: 'omit', signal: opts.signal};
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (opts.ifMatch !== undefined) headers['If-Match'] = `"${opts.ifMatch}"`;
  const res = await fetch(path, init);
  const data = await readBody(res);
  if (res.status === 401) {
    logout('expired');
  }
  if (!res.ok) throw new ApiError(res.status, data || {title: res.statusText});
  return {status: res.status, data, etag: res.headers.get('ETag')};
}

/** get is call('GET', path) answering the body. */
export async function get(path, opts) {
  return (await call('GET', path, opts)).data;
}

/** getAll fetches every page of a paged list (GET path?limit=&cursor=, following
 * next_cursor) and answers the items under key, in the server's order. */
export async function getAll(path, key, limit = 1000) {
  const items = [];
  let cursor = '';
  for (;;) {
    const page = await get(query(path, {limit, cursor}));
    items.push(...(page[key] || []));
    if (!page.next_cursor || page.next_cursor === cursor) return items;
    cursor = page.next_cursor;
  }
}

/** post is call('POST', path, {body}) answering the body. */
export async function post(path, body, opts = {}) {
  return (await call('POST', path, {...opts, body})).data;
}

/** url builds a path whose ${} parts are URL-escaped: url`/v1/users/${id}`. */
export function url(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(values[i]) : ''), '');
}

/** query appends the non-empty params as a query string. */
export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
