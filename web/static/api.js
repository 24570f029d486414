// api.js: the control plane's JSON API as the pages use it.

// APIError carries the status and the API's own message, and the
// decoded body of the answer (null when it was not JSON): a declined
// payment's 402 answers the subscription's state beside its error.
export class APIError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// decode parses an answer's text as JSON; null when empty or not JSON.
function decode(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

// profileChoice is the profile the viewer picked, sent with every API
// call as X-Fillcast-Profile. It is an id, not a secret: the session
// itself is the HttpOnly cookie the control plane sets, which the pages
// never see.
const PROFILE = 'fillcast.profile';
export const profileChoice = {
  get: () => localStorage.getItem(PROFILE) || '',
  set: (id) => localStorage.setItem(PROFILE, id),
  forget: () => localStorage.removeItem(PROFILE),
};

// withProfile adds the profile header to a call of the control plane's
// own paths (not of absolute URLs, which may be other hosts).
function withProfile(path, headers = {}) {
  const p = profileChoice.get();
  return p && path.startsWith('/') ? { ...headers, 'X-Fillcast-Profile': p } : headers;
}

// call fetches path and decodes JSON; non-2xx answers become APIError with
// the body's "error" message.
export async function call(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: withProfile(path, opts.headers) });
  const text = await res.text();
  const body = decode(text);
  if (!res.ok) {
    throw new APIError(res.status, (body && body.error) || text || res.statusText, body);
  }
  return body;
}

// sessionEvents fires "signedout" when a viewer's call is answered 401
// (the session expired, or was signed out elsewhere) and "noprofile" when
// the profile picked is no longer the account's; the app then asks the
// viewer to sign in or to pick a profile again.
export const sessionEvents = new EventTarget();

// viewer is call for the routes that need a signed-in viewer: every
// viewer call goes through it, so a lost session anywhere is noticed.
async function viewer(path, opts = {}) {
  try {
    return await call(path, opts);
  } catch (err) {
    if (err.status === 401) sessionEvents.dispatchEvent(new Event('signedout'));
    if (err.status === 400 && /X-Fillcast-Profile/.test(err.message)) {
      profileChoice.forget();
      sessionEvents.dispatchEvent(new Event('noprofile'));
    }
    throw err;
  }
}

// operatorKey is the operator's API key (or the bootstrap admin token).
// It is kept in sessionStorage only: it lives as long as the browser tab,
// is not shared with other tabs, and is never put in localStorage or a
// cookie, so it is not kept on disk after the tab and not sent with
// requests the page does not make itself.
const KEY = 'fillcast.key';
export const operatorKey = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (key) => sessionStorage.setItem(KEY, key),
  forget: () => sessionStorage.removeItem(KEY),
};

// keyEvents fires "refused" when the control plane answered 401 to the
// key kept (unknown or revoked); the key is forgotten by then, and the
// operator page asks for another.
export const keyEvents = new EventTarget();

// bearer returns headers with key as the bearer credential (unchanged
// without a key): the one place the page writes the header.
const bearer = (key, headers = {}) => (key ? { ...headers, Authorization: `Bearer ${key}` } : headers);

// refused forgets key after a 401, unless another key was set meanwhile.
function refused(key) {
  if (!key || operatorKey.get() !== key) return;
  operatorKey.forget();
  keyEvents.dispatchEvent(new Event('refused'));
}

// authed is call with the kept operator key. Every operator call goes
// through it (or upload), so a 401 anywhere drops the key.
export async function authed(path, opts = {}) {
  const key = operatorKey.get();
  try {
    return await call(path, { ...opts, headers: bearer(key, opts.headers) });
  } catch (err) {
    if (err.status === 401) refused(key);
    throw err;
  }
}

// upload posts file as multipart form data with the kept key, reporting
// progress to onProgress (fetch cannot report upload progress;
// XMLHttpRequest can); signal aborts it.
export function upload(path, file, { onProgress = () => {}, signal } = {}) {
  const key = operatorKey.get();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error('upload cancelled'));
      return;
    }
    const xhr = new XMLHttpRequest();
    const abort = () => xhr.abort();
    signal?.addEventListener('abort', abort);
    xhr.addEventListener('loadend', () => signal?.removeEventListener('abort', abort));
    xhr.addEventListener('abort', () => reject(new Error('upload cancelled')));
    xhr.open('POST', path);
    for (const [k, v] of Object.entries(bearer(key))) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener('load', () => {
      const body = decode(xhr.responseText) || {};
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      if (xhr.status === 401) refused(key);
      reject(new APIError(xhr.status, body.error || `${xhr.status} ${xhr.statusText}`));
    });
    xhr.addEventListener('error', () => reject(new Error('network error')));
    const fd = new FormData();
    fd.append('file', file);
    xhr.send(fd);
  });
}

const q = encodeURIComponent;

// json is the options of a call that sends body as JSON.
const json = (method, body) => ({ method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

// Sign-up and sign-in are public; the rest needs the session cookie.
export const plans = () => call('/v1/plans');
export const signUp = (email, password, plan) => call('/v1/accounts', json('POST', { email, password, plan }));
export const signIn = (email, password) => call('/v1/sessions', json('POST', { email, password }));
export const account = () => viewer('/v1/account');
export const signOut = () => viewer('/v1/sessions/current', { method: 'DELETE' });
export const signOutEverywhere = () => viewer('/v1/sessions', { method: 'DELETE' });
export const addProfile = (name, kids) => viewer('/v1/profiles', json('POST', { name, kids }));
export const deleteProfile = (id) => viewer(`/v1/profiles/${q(id)}`, { method: 'DELETE' });

// listTitles answers one page of the catalog, {titles, next_cursor}:
// at most limit titles (the control plane's cap is 200) after cursor
// (the next_cursor of the page before; none for the first), of genre
// and status when given. The titles come without their file lists: a
// page never downloads the catalog.
export const listTitles = (opts = {}) => viewer(`/v1/titles?${pageQuery(opts)}`);
export const title = (id) => viewer(`/v1/titles/${q(id)}`);
// titlesByID answers the titles of ids in that order, the unknown ones
// (and, for a kids profile, those not rated for it) left out; ids are
// asked for 100 (the control plane's cap) to a call.
export async function titlesByID(ids) {
  const unique = [...new Set(ids.filter(Boolean))];
  const calls = [];
  for (let i = 0; i < unique.length; i += IDS_PER_CALL) {
    calls.push(viewer(`/v1/titles?ids=${unique.slice(i, i + IDS_PER_CALL).map(q).join(',')}`));
  }
  const found = new Map();
  for (const page of await Promise.all(calls)) for (const t of page.titles || []) found.set(t.id, t);
  return unique.map((id) => found.get(id)).filter(Boolean);
}

// pageQuery is the query of a listing call: limit, cursor, genre and
// status, the ones given.
function pageQuery({ limit = 50, cursor = '', genre = '', status = '' } = {}) {
  const p = new URLSearchParams({ limit: String(limit) });
  if (cursor) p.set('cursor', cursor);
  if (genre) p.set('genre', genre);
  if (status) p.set('status', status);
  return p;
}

// IDS_PER_CALL is the most ids GET /v1/titles?ids= takes.
const IDS_PER_CALL = 100;

// posterURL is the URL of t's poster (the control plane's redirect to
// an appliance), or '' when it has none.
export const posterURL = (t) => t.poster_url || (t.poster ? fileURL(t.id, t.poster) : '');
// playback asks for a title; stream, the id of a stream this page holds
// already, re-uses its lease rather than taking another screen.
export const playback = (id, protocol, stream = '') =>
  viewer(`/v1/playback/${q(id)}?protocol=${q(protocol)}${stream ? `&stream=${q(stream)}` : ''}`);
export const keepAlive = (stream) => viewer(`/v1/streams/${q(stream)}/keepalive`, { method: 'POST' });
// endStream frees a screen; keepalive lets it go out while the page is
// being left.
export const endStream = (stream, keepalive = false) => viewer(`/v1/streams/${q(stream)}`, { method: 'DELETE', keepalive });
export const search = (text, genre = '', limit = 24) =>
  viewer(`/v1/search?q=${q(text)}&limit=${limit}${genre ? `&genre=${q(genre)}` : ''}&facets=true`);
export const suggest = (prefix) => viewer(`/v1/search/suggest?q=${q(prefix)}&limit=6`);
export const recommendations = (limit = 12) => viewer(`/v1/recommendations?limit=${limit}`);
export const similar = (id, limit = 8) => viewer(`/v1/titles/${q(id)}/similar?limit=${limit}`);
export const history = () => viewer('/v1/history');

// Billing. subscription is the account's subscription (404 when it has
// none); invoices its invoices, newest first. The calls that can move
// money carry an Idempotency-Key, key: one per submission
// (idempotencyKey), sent again when the same submission is retried, so
// that a retry after a lost answer gets the first answer instead of a
// second charge. The card number goes to the control plane in the body
// and nowhere else.
export const subscription = () => viewer('/v1/subscriptions/current');
export const invoices = () => viewer('/v1/invoices');
export const subscribe = (plan, card, key) =>
  viewer('/v1/subscriptions', idempotent(key, json('POST', { plan, payment_method: { card } })));
export const changePlan = (plan, key) => viewer('/v1/subscriptions/current', idempotent(key, json('PUT', { plan })));
export const cancelSubscription = (key) => viewer('/v1/subscriptions/current', idempotent(key, { method: 'DELETE' }));

// idempotencyKey returns a new Idempotency-Key: 128 random bits
// (getRandomValues, not randomUUID, which pages served over plain HTTP
// from a host other than localhost do not have).
export function idempotencyKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// idempotent adds the Idempotency-Key key to a call's options.
function idempotent(key, opts) {
  return { ...opts, headers: { ...opts.headers, 'Idempotency-Key': key } };
}

// Operator calls: each needs a key whose scope the route admits
// (docs/api.md).
export const whoami = () => authed('/v1/whoami');
export const fleet = () => authed('/v1/fleet');
export const sites = () => authed('/v1/sites');
export const jobs = () => authed('/v1/jobs');
// opTitles answers the titles of status, paging through the listing
// 200 at a time, up to max titles.
export async function opTitles(status, max = 1000) {
  const out = [];
  let cursor = '';
  do {
    const page = await authed(`/v1/titles?${pageQuery({ limit: 200, cursor, status })}`);
    out.push(...(page.titles || []));
    cursor = page.next_cursor || '';
  } while (cursor && out.length < max);
  return out.slice(0, max);
}
export const opTitle = (id) => authed(`/v1/titles/${q(id)}`);
export const createTitle = (t) => authed('/v1/titles', json('POST', t));
export const ingest = (id, file, opts) => upload(`/v1/titles/${q(id)}/ingest`, file, opts);
export const apiKeys = () => authed('/v1/apikeys');
export const createAPIKey = (name, scope) => authed('/v1/apikeys', json('POST', { name, scope }));
export const revokeAPIKey = (id) => authed(`/v1/apikeys/${q(id)}`, { method: 'DELETE' });
export const appliances = () => authed('/v1/appliances');
export const registerAppliance = (id, reg) => authed(`/v1/appliances/${q(id)}`, json('PUT', reg));
export const revokeAppliance = (id) => authed(`/v1/appliances/${q(id)}`, { method: 'DELETE' });
// opsQoE is the quality of experience of the last window (15 minutes)
// by title, site and appliance; opsEvents the events that match filter
// ({type, title, appliance, site, user, since, limit}), newest first.
export const opsQoE = () => authed('/v1/ops/qoe');
export const opsEvents = (filter = {}) => authed(`/v1/ops/events?${new URLSearchParams(filter)}`);
// rules are the runtime rules (drain, canary, route, static, limit);
// rulesAudit the changes to them, newest first, at most limit.
export const rules = () => authed('/v1/rules');
export const rulesAudit = (limit = 20) => authed(`/v1/rules/audit?limit=${limit}`);
// squeezes are the squeeze tests, newest first. startSqueeze takes
// {appliance, step_percent, step, max_p99_ms, max_error_ratio}, the
// fields left out taking the control plane's defaults; cancelSqueeze
// answers 409 for a squeeze that has finished.
export const squeezes = () => authed('/v1/squeeze');
export const startSqueeze = (req) => authed('/v1/squeeze', json('POST', req));
export const cancelSqueeze = (id) => authed(`/v1/squeeze/${q(id)}`, { method: 'DELETE' });
// billingReport is billing as of now: subscriptions by status, the
// active ones by plan, the monthly recurring revenue per currency,
// churn and the failed payments of the last 30 days.
export const billingReport = () => authed('/v1/billing/report');

// fileURL is the control plane's redirect to a title file on an appliance
// (poster, downloads).
export const fileURL = (id, path) => `/v1/titles/${q(id)}/files/${path.split('/').map(q).join('/')}`;

// postEvents posts body, a batch of events as JSON (events.js builds
// it), as profile: the profile picked when the events happened, which
// may not be the one picked now. It answers the Response itself, as the
// event queue reads the status, the events rejected and Retry-After.
// keepalive lets a batch still go out while the page is being left;
// signal ends a post that takes too long.
export function postEvents(body, { profile = profileChoice.get(), keepalive = false, signal } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (profile) headers['X-Fillcast-Profile'] = profile;
  return fetch('/v1/events', { method: 'POST', headers, body, keepalive, signal });
}
