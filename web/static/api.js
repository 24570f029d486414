// api.js: the control plane's JSON API as the pages use it.

// APIError carries the status and the API's own message.
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// call fetches path and decodes JSON; non-2xx answers become APIError with
// the body's "error" message.
export async function call(path, opts = {}) {
  const res = await fetch(path, opts);
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    throw new APIError(res.status, (body && body.error) || text || res.statusText);
  }
  return body;
}

const q = encodeURIComponent;

export const titles = () => call('/v1/titles');
export const title = (id) => call(`/v1/titles/${q(id)}`);
export const playback = (id, protocol) => call(`/v1/playback/${q(id)}?protocol=${q(protocol)}`);
export const search = (text, genre = '', limit = 24) =>
  call(`/v1/search?q=${q(text)}&limit=${limit}${genre ? `&genre=${q(genre)}` : ''}&facets=true`);
export const suggest = (prefix) => call(`/v1/search/suggest?q=${q(prefix)}&limit=6`);
export const recommendations = (user, limit = 12) => call(`/v1/recommendations?user=${q(user)}&limit=${limit}`);
export const similar = (id, limit = 8) => call(`/v1/titles/${q(id)}/similar?limit=${limit}`);
export const history = (user) => call(`/v1/users/${q(user)}/history`);
export const fleet = () => call('/v1/fleet');
export const sites = () => call('/v1/sites');
export const jobs = () => call('/v1/jobs');

// fileURL is the control plane's redirect to a title file on an appliance
// (poster, downloads).
export const fileURL = (id, path) => `/v1/titles/${q(id)}/files/${path.split('/').map(q).join('/')}`;

// sendEvents posts a batch of viewing events; keepalive lets the last
// batch of a page being left still go out.
export function sendEvents(batch) {
  return fetch('/v1/events', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(batch),
    keepalive: true,
  }).catch(() => {});
}

// admin returns the options of an authenticated call.
export function admin(token, opts = {}) {
  return { ...opts, headers: { ...(opts.headers || {}), Authorization: `Bearer ${token}` } };
}
