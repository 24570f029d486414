// ops.js: the operator page. It first asks for an operator key (an API
// key fck.<id>.<secret>, or the bootstrap admin token), kept for the
// browser tab only (api.operatorKey), asks the control plane whose key it
// is (GET /v1/whoami) and then shows only what the key's scopes may use:
// the fleet (health, load, hit ratio, cache use, fill progress), sites and
// appliance registrations, squeeze tests (with, for operators, a form to
// start one and a button to cancel it), the runtime rules and who changed
// them, the viewers' quality of experience (by title, site and appliance)
// and the player errors reported last, billing (recurring revenue,
// subscriptions, churn, failed payments), ingest jobs with their progress,
// an upload form, and for admins the API keys and appliance credentials.
// The control plane enforces the same rules; the page only spares
// operators buttons that would answer 403. A 401 from any call (the key
// revoked) forgets the key and asks again.

import * as api from './api.js';
import { h, show, bytes, bits, pct, meter, money, errorBox } from './ui.js';

const REFRESH_MS = 2000;
const ID_PATTERN = '[A-Za-z0-9_][A-Za-z0-9_\\-]{0,63}';
const SCOPES = ['read', 'ingest', 'operator', 'admin'];
const QOE_ROWS = 20; // the keys with the most plays shown per table
const SQUEEZES_SHOWN = 10; // the newest squeeze tests listed
const STEPS_SHOWN = 40; // the last steps listed of a squeeze
const SQUEEZE_IDLE_MS = 10000; // how often squeezes are asked for while none runs
const AUDIT_ROWS = 20; // the rule changes listed
const REPORT_MS = 60000; // the billing report reads every subscription: asked for at most this often

// can says whether who holds one of scopes; admin holds them all, and
// can(who) alone asks for admin.
const can = (who, ...scopes) => (who.scopes || []).some((s) => s === 'admin' || scopes.includes(s));

// sees is what the page shows who, after the route policies of the
// control plane (docs/api.md).
const sees = (who) => ({
  fleet: can(who, 'operator', 'read'), // GET /v1/fleet, /v1/sites, /v1/appliances
  qoe: can(who, 'operator', 'read'), // GET /v1/ops/qoe, /v1/ops/events
  jobs: can(who, 'operator', 'ingest', 'read'), // GET /v1/jobs
  upload: can(who, 'operator', 'ingest'), // POST /v1/titles/{id}/ingest
  createTitle: can(who, 'operator'), // POST /v1/titles
  squeeze: can(who, 'operator', 'read'), // GET /v1/squeeze
  startSqueeze: can(who, 'operator'), // POST /v1/squeeze, DELETE /v1/squeeze/{id}
  rules: can(who, 'operator', 'read'), // GET /v1/rules, /v1/rules/audit
  billing: can(who, 'operator', 'read'), // GET /v1/billing/report
  admin: can(who), // /v1/apikeys, PUT and DELETE /v1/appliances/{id}
});

// failure says in words why a call failed.
function failure(err) {
  if (err.status === 403) return `${err.message}: this key's scope does not allow it`;
  return err.message || String(err);
}

const field = (label, el) => h('label', {}, h('span', {}, label), el);
const when = (t) => (t ? new Date(t).toLocaleString() : '');

function fleetTable(fleet) {
  if (!fleet.length) return h('p', {}, 'No appliance has registered or sent a heartbeat yet.');
  return h('table', { id: 'fleet' },
    h('thead', {}, h('tr', {}, ['Appliance', 'Site', 'Profile', 'Health', 'Load', 'Hit ratio', 'Cache', 'Fill'].map((c) => h('th', {}, c)))),
    h('tbody', {}, fleet.map((a) => {
      const hb = a.heartbeat || {};
      const health = !a.live ? 'down' : hb.health || 'ok';
      return h('tr', { 'data-appliance': a.id },
        h('td', {}, /^https?:\/\//.test(a.url || '') ? h('a', { href: `${a.url}/v1/status` }, a.id) : a.id),
        h('td', {}, a.site || hb.site || ''),
        h('td', {}, a.profile || hb.profile || ''),
        h('td', {}, h('span', { class: `badge ${health}` }, health), a.steerable ? '' : h('span', { class: 'muted' }, ' not steered')),
        h('td', {}, `${(hb.rps || 0).toFixed(1)} req/s · ${bits(hb.bps)}`),
        h('td', {}, hb.rps ? pct(hb.hit_ratio) : h('span', { class: 'muted' }, 'idle')),
        h('td', {}, meter(hb.used_bytes || 0, hb.capacity_bytes || a.capacity_bytes || 0, `${bytes(hb.used_bytes)} of ${bytes(hb.capacity_bytes || a.capacity_bytes)}`)),
        h('td', {}, hb.fill_planned_bytes
          ? meter(hb.fill_present_bytes, hb.fill_planned_bytes, `${bytes(hb.fill_present_bytes)} of ${bytes(hb.fill_planned_bytes)} planned`)
          : h('span', { class: 'muted' }, 'no plan yet')));
    })));
}

function sitesTable(sites) {
  return h('table', { id: 'sites' },
    h('thead', {}, h('tr', {}, ['Site', 'Kind', 'Region', 'Prefixes', 'Fill window', 'Parent'].map((c) => h('th', {}, c)))),
    h('tbody', {}, sites.map((s) => h('tr', {},
      h('td', {}, s.id), h('td', {}, s.kind), h('td', {}, s.region), h('td', {}, (s.prefixes || []).join(' ')),
      h('td', {}, s.fill_window ? `${s.fill_window} ${s.timezone || 'UTC'}` : 'any time'), h('td', {}, s.parent || '')))));
}

const ms = (v) => (v ? `${Math.round(v)} ms` : '–');
const kbps = (v) => (v ? bits(v * 1000) : '–');

// qoeTable shows one breakdown of GET /v1/ops/qoe, the QOE_ROWS keys
// with the most plays; name is what a key is (Title, Site, Appliance)
// and cell draws a key.
function qoeTable(id, name, rows, cell = (k) => k) {
  if (!rows || !rows.length) return h('p', { class: 'muted', id }, `No ${name.toLowerCase()} had a play in this window.`);
  const top = [...rows].sort((a, b) => (b.plays || 0) - (a.plays || 0)).slice(0, QOE_ROWS);
  return h('table', { id, class: 'qoe' },
    h('thead', {}, h('tr', {}, [name, 'Plays', 'Startup p50', 'Startup p95', 'Rebuffering', 'Bitrate', 'Errors', 'CMCD bitrate', 'Starvation']
      .map((c, i) => h('th', { class: i ? 'num' : null }, c)))),
    h('tbody', {}, top.map((r) => h('tr', { 'data-key': r.key },
      h('td', {}, cell(r.key)),
      [String(r.plays || 0), ms(r.startup_p50_ms), ms(r.startup_p95_ms), pct(r.rebuffer_ratio, 1), kbps(r.bitrate_kbps),
        pct(r.error_rate, 1), kbps(r.cmcd_bitrate_kbps), pct(r.starvation_ratio, 1)].map((v) => h('td', { class: 'num' }, v))))));
}

// qoeTables shows GET /v1/ops/qoe: what the players reported (startup,
// rebuffering, bitrate, errors) beside what the appliances saw of their
// CMCD (bitrate, buffer starvation), by title, site and appliance.
function qoeTables(q) {
  const minutes = Math.round((q.window_s || 0) / 60);
  return h('div', {},
    h('p', { class: 'muted' }, `The last ${minutes} minutes; the ${QOE_ROWS} with the most plays of each.`),
    h('h3', {}, 'By title'), qoeTable('qoe-titles', 'Title', q.titles, (k) => h('a', { href: `#/title/${encodeURIComponent(k)}` }, k)),
    h('h3', {}, 'By site'), qoeTable('qoe-sites', 'Site', q.sites),
    h('h3', {}, 'By appliance'), qoeTable('qoe-appliances', 'Appliance', q.appliances));
}

// errorsTable lists the player errors reported last (GET
// /v1/ops/events?type=error), newest first.
function errorsTable(res) {
  const evs = (res && res.events) || [];
  if (!evs.length) return h('p', { class: 'muted', id: 'recent-errors' }, 'No player has reported an error.');
  return h('table', { id: 'recent-errors' },
    h('thead', {}, h('tr', {}, ['When', 'Error', 'Title', 'Appliance', 'Site', 'Message'].map((c) => h('th', {}, c)))),
    h('tbody', {}, evs.map((e) => h('tr', {},
      h('td', {}, when(e.ts)),
      h('td', {}, h('code', {}, e.code), e.fatal ? [' ', h('span', { class: 'badge failed' }, 'fatal')] : ''),
      h('td', {}, e.title ? h('a', { href: `#/title/${encodeURIComponent(e.title)}` }, e.title) : ''),
      h('td', {}, e.appliance || ''), h('td', {}, e.site || ''),
      h('td', { class: 'message' }, e.message || '')))));
}

// missing says in words that this control plane has no such route yet
// (an older version), rather than "not found".
const missing = (what) => (err) => {
  throw err.status === 404 ? new Error(`This control plane does not report ${what} (an older version?).`) : err;
};

function jobsTable(jobs) {
  if (!jobs.length) return h('p', {}, 'No ingest jobs yet.');
  return h('table', { id: 'jobs' },
    h('thead', {}, h('tr', {}, ['Job', 'Title', 'Status', 'Progress', 'Updated'].map((c) => h('th', {}, c)))),
    h('tbody', {}, jobs.slice(0, 20).map((j) => h('tr', {},
      h('td', {}, j.id), h('td', {}, h('a', { href: `#/title/${encodeURIComponent(j.title)}` }, j.title)),
      h('td', {}, h('span', { class: `badge ${j.status}` }, j.status), j.error ? h('span', { class: 'error' }, ` ${j.error}`) : ''),
      h('td', {}, j.status === 'done' ? '' : meter(j.percent, 100, `${j.stage || 'queued'} ${Math.round(j.percent || 0)}%`)),
      h('td', {}, new Date(j.updated).toLocaleTimeString())))));
}

// appliancesTable lists the registrations; revoke, for admins, adds a
// button to each.
function appliancesTable(regs, revoke) {
  if (!regs.length) return h('p', {}, 'No appliance is registered.');
  const cols = ['Appliance', 'Site', 'Profile', 'URLs', 'Registered', revoke && ''];
  return h('table', { id: 'appliances' },
    h('thead', {}, h('tr', {}, cols.filter((c) => c !== false).map((c) => h('th', {}, c)))),
    h('tbody', {}, regs.map((r) => h('tr', { 'data-appliance': r.id },
      h('td', {}, r.id), h('td', {}, r.site), h('td', {}, r.profile), h('td', {}, (r.urls || []).join(' ')), h('td', {}, when(r.registered)),
      revoke && h('td', {}, h('button', { type: 'button', class: 'danger', onclick: () => revoke(r) }, 'Revoke'))))));
}

// keysTable lists the API keys, marking the one this page uses.
function keysTable(keys, self, revoke) {
  if (!keys.length) return h('p', {}, 'No API key yet: this page uses the bootstrap admin token.');
  return h('table', { id: 'apikeys' },
    h('thead', {}, h('tr', {}, ['Key', 'Name', 'Scope', 'Created', ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, keys.map((k) => h('tr', { 'data-key': k.id },
      h('td', {}, k.id, k.id === self ? h('span', { class: 'muted' }, ' (this page)') : ''), h('td', {}, k.name || ''),
      h('td', {}, k.scope), h('td', {}, when(k.created)),
      h('td', {}, h('button', { type: 'button', class: 'danger', onclick: () => revoke(k) }, 'Revoke'))))));
}

// panel is a part of the page that shows what load answers. The refresh
// loop redraws it only when the answer changed, so that a button is not
// replaced under the pointer.
function panel(load, render) {
  const el = h('div', {}, 'Loading…');
  let last = null;
  const draw = (res) => {
    const sig = res instanceof Error ? `error ${res.message}` : JSON.stringify(res);
    if (sig === last) return;
    last = sig;
    try {
      el.replaceChildren(res instanceof Error ? errorBox(failure(res)) : render(res));
    } catch (err) {
      el.replaceChildren(errorBox(`cannot show the answer: ${err.message}`));
    }
  };
  return { el, refresh: () => load().then(draw, draw) };
}

// act runs fn, which changes something, and says in status what it did
// (fn's answer) or what went wrong.
async function act(status, doing, fn) {
  status.replaceChildren(h('p', { class: 'muted' }, doing));
  try {
    status.replaceChildren(await fn());
  } catch (err) {
    status.replaceChildren(errorBox(failure(err)));
  }
}

// secret shows a key or credential that the control plane answers only
// once, with a button that copies it.
function secret(label, value, hint) {
  const out = h('input', { class: 'secret', readonly: true, value, size: Math.min(value.length, 72), 'aria-label': label, onfocus: (e) => e.target.select() });
  const copy = h('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    out.select();
    try {
      await navigator.clipboard.writeText(value);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Selected: press Ctrl+C';
    }
  });
  return h('div', { class: 'secret-box', role: 'status' }, h('p', {}, label), h('p', {}, out, ' ', copy), h('p', { class: 'muted' }, hint));
}

// uploadForm posts a file to a title's ingest endpoint, showing upload
// progress; the job then appears in the jobs table. With createTitle
// (the operator scope) it first creates the title (status new); an
// ingest-only key may upload only to a title that exists, since creating
// titles is the operator scope's, so the form asks for the id alone,
// offers the titles waiting for their video, and checks the title before
// sending the file.
function uploadForm(createTitle, signal) {
  const id = h('input', { name: 'id', required: true, pattern: ID_PATTERN, title: 'letters, digits, - and _', placeholder: 'my-title', list: !createTitle && 'titles-new' });
  const name = h('input', { name: 'name', required: true, maxlength: 200 });
  const desc = h('textarea', { name: 'description', rows: 2, maxlength: 2000 });
  const genres = h('input', { name: 'genres', placeholder: 'drama, comedy' });
  const year = h('input', { name: 'year', type: 'number', min: 1888, max: 2100 });
  const file = h('input', { name: 'file', type: 'file', accept: 'video/*', required: true });
  const status = h('p', { class: 'muted', id: 'upload-status' });
  const waiting = !createTitle && h('datalist', { id: 'titles-new' });
  if (waiting) {
    api.opTitles('new').then((ts) => waiting.replaceChildren(...ts.map((t) => h('option', { value: t.id }, t.name))), () => {});
  }
  const form = h('form', { id: 'upload', class: 'upload' },
    field('Title id', id), waiting,
    createTitle && [field('Name', name), field('Description', desc), field('Genres', genres), field('Year', year)],
    field('Video file', file), h('button', { type: 'submit' }, 'Upload and ingest'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = { id: id.value.trim(), name: name.value.trim(), description: desc.value.trim(), status: 'new',
      genres: genres.value.split(',').map((g) => g.trim()).filter(Boolean), year: Number(year.value) || 0 };
    try {
      if (createTitle) {
        status.textContent = 'Creating the title…';
        await api.createTitle(t).catch((err) => { if (err.status !== 409) throw err; });
      } else {
        await api.opTitle(t.id).catch((err) => {
          throw err.status === 404 ? new Error(`there is no title ${t.id}, and creating titles needs the operator scope: ask an operator to add it`) : err;
        });
      }
      const job = await api.ingest(t.id, file.files[0], { signal, onProgress: (p) => { status.textContent = `Uploading… ${Math.round(100 * p)}%`; } });
      status.textContent = `Uploaded: job ${job.id} is transcoding (see the jobs table).`;
    } catch (err) {
      status.replaceChildren(errorBox(`Upload failed: ${failure(err)}`));
    }
  });
  if (createTitle) return form;
  return [h('p', { class: 'muted' }, 'This key has the ingest scope: it uploads the video of a title that exists already. Creating a title needs the operator scope.'), form];
}

// appliancesSection lists the appliance registrations; for admins it also
// registers one, showing its credential once, and revokes them.
function appliancesSection(admin) {
  const status = h('div', { id: 'appliance-status' });
  const revoke = (r) => {
    if (!confirm(`Revoke the appliance ${r.id}? It leaves steering and its credential stops working at once.`)) return;
    act(status, `Revoking ${r.id}…`, async () => {
      await api.revokeAppliance(r.id);
      list.refresh();
      return h('p', {}, `Appliance ${r.id} revoked.`);
    });
  };
  const list = panel(api.appliances, (regs) => appliancesTable(regs, admin && revoke));
  if (!admin) return { nodes: [list.el], panels: [list] };

  const id = h('input', { name: 'id', required: true, pattern: ID_PATTERN, title: 'letters, digits, - and _', placeholder: 'edge-7' });
  const site = h('input', { name: 'site', required: true, list: 'site-ids' });
  const sites = h('datalist', { id: 'site-ids' });
  api.sites().then((ss) => sites.replaceChildren(...ss.map((s) => h('option', { value: s.id }))), () => {});
  const profile = h('select', { name: 'profile' }, ['flash', 'storage'].map((p) => h('option', { value: p }, p)));
  const urls = h('input', { name: 'urls', required: true, placeholder: 'https://edge-7.example.net:8443', title: 'the URLs it may advertise, separated by spaces' });
  const form = h('form', { id: 'appliance-form', class: 'upload' },
    field('Appliance id', id), field('Site', site), sites, field('Profile', profile), field('URLs', urls),
    h('button', { type: 'submit' }, 'Register'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const reg = { site: site.value.trim(), profile: profile.value, urls: urls.value.split(/[\s,]+/).filter(Boolean) };
    act(status, `Registering ${id.value.trim()}…`, async () => {
      const r = await api.registerAppliance(id.value.trim(), reg);
      form.reset();
      list.refresh();
      return secret(`Credential of appliance ${r.id}:`, r.credential,
        'Give it to the appliance now (its bearer credential): it is shown only this once. Registering the appliance again issues a new credential and the old one stops working.');
    });
  });
  return { nodes: [list.el, h('h3', {}, 'Register an appliance'), form, status], panels: [list] };
}

// apiKeysSection lists the API keys, creates one (its key shown once) and
// revokes them; admins only. Revoking the page's own key calls selfRevoked.
function apiKeysSection(who, selfRevoked) {
  const status = h('div', { id: 'apikey-status' });
  const revoke = (k) => {
    const self = k.id === who.id;
    if (!confirm(`Revoke the key ${k.id}${k.name ? ` (${k.name})` : ''}? Requests with it are refused at once.${self ? ' This page uses it.' : ''}`)) return;
    act(status, `Revoking ${k.id}…`, async () => {
      await api.revokeAPIKey(k.id);
      if (self) selfRevoked();
      else list.refresh();
      return h('p', {}, `Key ${k.id} revoked.`);
    });
  };
  const list = panel(api.apiKeys, (keys) => keysTable(keys, who.id, revoke));
  const name = h('input', { name: 'name', maxlength: 200, placeholder: 'ci-uploader' });
  const scope = h('select', { name: 'scope' }, SCOPES.map((s) => h('option', { value: s }, s)));
  const form = h('form', { id: 'apikey-form', class: 'upload' },
    field('Name', name), field('Scope', scope), h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(status, 'Creating a key…', async () => {
      const k = await api.createAPIKey(name.value.trim(), scope.value);
      form.reset();
      list.refresh();
      return secret(`New ${k.scope} key ${k.id}${k.name ? ` (${k.name})` : ''}:`, k.key,
        'Copy it now: it is shown only this once, and the control plane keeps only its hash.');
    });
  });
  return { nodes: [list.el, h('h3', {}, 'Create a key'), form, status], panels: [list] };
}

// num formats a measure with at most digits decimals; share formats one
// that is a percentage already (a canary's share of new playbacks).
const num = (v, digits = 1) => String(Math.round((v || 0) * 10 ** digits) / 10 ** digits);
const share = (v) => `${num(v, 2)}%`;
// span shortens a Go duration string: "1h0m0s" is "1h", "1m30s" stays.
const span = (d) => String(d || '').replace(/([hm])0s$/, '$1').replace(/h0m$/, 'h');

// stepsTable lists the steps a squeeze finished, the last STEPS_SHOWN:
// the share sent, what the appliance reported at the end of the step,
// and the step that crossed a bound marked, with the measure that did.
function stepsTable(q) {
  const steps = q.steps || [];
  const shown = steps.slice(-STEPS_SHOWN);
  return h('table', { class: 'steps' },
    steps.length > shown.length && h('caption', { class: 'muted' }, `The last ${shown.length} of ${steps.length} steps.`),
    h('thead', {}, h('tr', {}, ['Step', 'Share', 'Rate', 'p99', 'Errors', 'Ended'].map((c, i) => h('th', { class: i > 0 && i < 5 ? 'num' : null }, c)))),
    h('tbody', {}, shown.map((st, i) => h('tr', { class: st.crossed ? 'crossed' : null, 'data-percent': st.percent },
      h('td', {}, String(steps.length - shown.length + i + 1), st.crossed ? [' ', h('span', { class: 'badge stopped' }, 'crossed')] : ''),
      h('td', { class: 'num' }, share(st.percent)),
      h('td', { class: 'num' }, `${num(st.rps)} req/s`),
      h('td', { class: st.p99_ms > q.max_p99_ms ? 'num over' : 'num' }, `${num(st.p99_ms)} ms`),
      h('td', { class: st.error_ratio > q.max_error_ratio ? 'num over' : 'num' }, pct(st.error_ratio, 2)),
      h('td', {}, st.at ? new Date(st.at).toLocaleTimeString() : '')))));
}

// squeezesTable lists the newest SQUEEZES_SHOWN squeeze tests, each with
// its steps below it; cancel, for operators, adds a button to the
// running ones.
function squeezesTable(qs, cancel) {
  if (!qs.length) return h('p', { class: 'muted', id: 'squeezes' }, 'No squeeze test yet.');
  const cols = ['Squeeze', 'Appliance', 'Status', 'Now', 'Held', 'Bounds', 'Started', cancel && ''].filter((c) => c !== false);
  return h('div', {},
    h('table', { id: 'squeezes' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h('tbody', {}, qs.slice(0, SQUEEZES_SHOWN).flatMap((q) => {
        const running = q.status === 'running';
        let now = h('span', { class: 'muted' }, '–');
        if (running) now = q.percent ? meter(q.percent, 100, `${share(q.percent)} of new playbacks`) : h('span', { class: 'muted' }, 'between steps');
        return [
          h('tr', { 'data-squeeze': q.id, class: 'squeeze' },
            h('td', {}, h('code', {}, q.id)),
            h('td', {}, q.appliance),
            h('td', {}, h('span', { class: `badge ${q.status}` }, q.status), q.reason ? h('span', { class: 'reason muted' }, q.reason) : ''),
            h('td', { class: 'now' }, now),
            h('td', { class: 'held' }, q.held_percent ? `${share(q.held_percent)} at ${num(q.held_rps)} req/s` : h('span', { class: 'muted' }, 'none yet')),
            h('td', {}, `steps of ${share(q.step_percent)} every ${span(q.step)}; p99 ≤ ${num(q.max_p99_ms)} ms, errors ≤ ${pct(q.max_error_ratio, 2)}`),
            h('td', {}, when(q.started), q.started_by ? h('span', { class: 'muted' }, ` by ${q.started_by}`) : ''),
            cancel && h('td', {}, running ? h('button', { type: 'button', class: 'danger', onclick: () => cancel(q) }, 'Cancel') : '')),
          h('tr', { class: 'steps-row', 'data-steps': q.id },
            h('td', { colspan: cols.length }, (q.steps || []).length ? stepsTable(q)
              : h('p', { class: 'muted' }, running ? 'No step has ended yet.' : 'It ended before a step did.'))),
        ];
      }))),
    qs.length > SQUEEZES_SHOWN && h('p', { class: 'muted' }, `The newest ${SQUEEZES_SHOWN} of ${qs.length} squeeze tests.`));
}

// squeezeLoader asks for the squeeze tests every time while one runs
// (the refresh loop's REFRESH_MS), and otherwise at most every
// SQUEEZE_IDLE_MS, answering the last list in between; stale makes the
// next call ask, after this page started or cancelled one. An answer to
// a call made before the last one answered is dropped for that one, so
// that a slow refresh cannot undo what the page just did.
function squeezeLoader() {
  let last = null;
  let at = 0;
  let asked = 0; // calls made
  let kept = 0; // the call whose answer last is
  const load = async () => {
    if (last && !last.some((q) => q.status === 'running') && Date.now() - at < SQUEEZE_IDLE_MS) return last;
    const n = ++asked;
    const qs = await api.squeezes().catch(missing('squeeze tests'));
    if (n < kept) return last;
    last = qs || [];
    kept = n;
    at = Date.now();
    return last;
  };
  load.stale = () => { last = null; };
  return load;
}

// applianceOptions keeps a select's options the appliances of the fleet,
// keeping the one chosen; it is called with every answer of GET
// /v1/fleet and redraws only when the fleet changed.
function applianceOptions(select) {
  let sig = null;
  return (fleet) => {
    const next = JSON.stringify(fleet.map((a) => [a.id, a.live]));
    if (next === sig) return;
    sig = next;
    const chosen = select.value;
    select.replaceChildren(h('option', { value: '' }, fleet.length ? 'Choose an appliance' : 'No appliance yet'),
      ...fleet.map((a) => h('option', { value: a.id, selected: a.id === chosen }, a.live ? a.id : `${a.id} (down)`)));
  };
}

// squeezeSection lists the squeeze tests; for operators it also starts
// one, on an appliance of the fleet (onFleet registers for the fleet's
// answers), and cancels the running ones.
function squeezeSection(operator, onFleet) {
  const status = h('div', { id: 'squeeze-status' });
  const load = squeezeLoader();
  const reload = () => { load.stale(); return list.refresh(); };
  const cancel = (q) => {
    if (!confirm(`Cancel the squeeze ${q.id} on ${q.appliance}? Its canary rule is deleted and steering is as before.`)) return;
    act(status, `Cancelling ${q.id}…`, async () => {
      await api.cancelSqueeze(q.id);
      reload();
      return h('p', {}, `Squeeze ${q.id} cancelled.`);
    });
  };
  const list = panel(load, (qs) => squeezesTable(qs, operator && cancel));
  const intro = h('p', { class: 'muted' },
    'A squeeze test steers a growing share of new playbacks to one appliance, step by step, while the p99 latency and error ratio of its heartbeats stay within the bounds. ',
    'The first step that crosses one stops it; the step before is what the appliance held.');
  if (!operator) return { nodes: [intro, list.el], panels: [list] };

  const appliance = h('select', { name: 'appliance', required: true }, h('option', { value: '' }, 'Loading the fleet…'));
  onFleet(applianceOptions(appliance));
  const number = (name, attrs) => h('input', { name, type: 'number', step: 'any', ...attrs });
  const stepPercent = number('step_percent', { min: 0.1, max: 100, placeholder: '5', title: 'the share added at each step, in percent' });
  const step = h('input', { name: 'step', placeholder: '10s', pattern: '([0-9]+(\\.[0-9]+)?(ms|s|m|h))+', title: 'how long each step lasts: a duration such as 10s, 1m30s (1s to 1h)' });
  const maxP99 = number('max_p99_ms', { min: 0, placeholder: '50', title: 'the highest p99 latency the appliance may report, in milliseconds' });
  const maxErrors = number('max_error_ratio', { min: 0, max: 1, placeholder: '0.01', title: 'the highest share of failed responses, from 0 to 1' });
  const form = h('form', { id: 'squeeze-form', class: 'upload' },
    field('Appliance', appliance), field('Step (%)', stepPercent), field('Step length', step),
    field('Max p99 (ms)', maxP99), field('Max error ratio', maxErrors), h('button', { type: 'submit' }, 'Start squeeze'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const req = { appliance: appliance.value };
    for (const [k, el] of [['step_percent', stepPercent], ['max_p99_ms', maxP99], ['max_error_ratio', maxErrors]]) {
      if (el.value !== '') req[k] = Number(el.value);
    }
    if (step.value.trim()) req.step = step.value.trim();
    act(status, `Starting a squeeze on ${req.appliance}…`, async () => {
      const q = await api.startSqueeze(req);
      reload();
      return h('p', {}, 'Squeeze ', h('code', { class: 'squeeze-id' }, q.id), ` started on ${q.appliance}: steps of ${share(q.step_percent)} every ${span(q.step)}.`);
    });
  });
  return {
    nodes: [intro, list.el, h('h3', {}, 'Start a squeeze test'),
      h('p', { class: 'muted' }, 'Fields left empty take the defaults shown.'), form, status],
    panels: [list],
  };
}

// target says where a canary or route rule sends players.
const target = (t) => (!t ? 'nowhere' : t.site ? `site ${t.site}` : `appliances ${(t.appliances || []).join(', ')}`);

// ruleSummary says in words what a rule does.
function ruleSummary(r) {
  switch (r.kind) {
    case 'drain':
      return `takes ${r.appliance ? `appliance ${r.appliance}` : `site ${r.site}`} out of steering`;
    case 'canary':
      return `sends ${share(r.percent)} of new playbacks of ${r.title === '*' ? 'every title' : r.title} to ${target(r.target)}`;
    case 'route': {
      const m = r.match || {};
      const what = [m.header && `with header ${m.header}${m.value ? `: ${m.value}` : ''}`, m.prefix && `from ${m.prefix}`].filter(Boolean).join(' and ');
      return `steers requests ${what} to ${target(r.target)}`;
    }
    case 'static':
      return `answers ${r.route} itself with ${r.status}${r.retry_after ? `, Retry-After ${r.retry_after} s` : ''}`;
    case 'limit':
      return `limits ${r.route ? `route ${r.route}` : 'every route'}${r.class ? ` for ${r.class}` : ''} to ${num(r.per_second, 2)} req/s, burst ${r.burst || 0}`;
    default:
      return '';
  }
}

// squeezeRule marks the canary rules that squeeze tests put.
const squeezeRule = (id) => (id.startsWith('squeeze-') ? h('span', { class: 'muted' }, ' (squeeze test)') : '');

// rulesTable lists the runtime rules, what each does and who changed it
// last.
function rulesTable(rs) {
  if (!rs.length) return h('p', { class: 'muted', id: 'rules' }, 'No runtime rule is set.');
  return h('table', { id: 'rules' },
    h('thead', {}, h('tr', {}, ['Rule', 'Kind', 'What it does', 'Changed by', 'Changed'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rs.map((r) => h('tr', { 'data-rule': r.id },
      h('td', {}, h('code', {}, r.id), squeezeRule(r.id)),
      h('td', {}, h('span', { class: `badge ${r.kind}` }, r.kind)),
      h('td', { class: 'message', title: r.body ? JSON.stringify(r.body) : null }, ruleSummary(r)),
      h('td', {}, r.updated_by || ''), h('td', {}, when(r.updated))))));
}

// auditTable lists the last changes to the rules (GET /v1/rules/audit),
// newest first.
function auditTable(changes) {
  if (!changes.length) return h('p', { class: 'muted', id: 'rules-audit' }, 'No rule has been changed yet.');
  return h('table', { id: 'rules-audit' },
    h('thead', {}, h('tr', {}, ['When', 'Change', 'Rule', 'By', 'What it did'].map((c) => h('th', {}, c)))),
    h('tbody', {}, changes.map((c) => h('tr', { 'data-rule': c.id, 'data-op': c.op },
      h('td', {}, when(c.at)),
      h('td', {}, h('span', { class: `badge ${c.op}` }, c.op)),
      h('td', {}, h('code', {}, c.id), squeezeRule(c.id)),
      h('td', {}, c.by || ''),
      h('td', { class: 'message' }, c.rule ? `${c.rule.kind}: ${ruleSummary(c.rule)}` : 'deleted the rule')))));
}

// SUB_STATUSES are a subscription's statuses in the order of its life.
const SUB_STATUSES = ['trialing', 'active', 'past_due', 'incomplete', 'canceled'];

// counts lists m, {key: count}, as a table of the keys (what name says
// they are) and their counts, the largest count first or, given order,
// in its order; each row has its key in data-{name}.
function counts(id, name, m, order = null) {
  const keys = Object.keys(m || {});
  if (!keys.length) return h('p', { class: 'muted', id }, 'None.');
  const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
  keys.sort(order ? (a, b) => rank(a) - rank(b) || a.localeCompare(b) : (a, b) => m[b] - m[a] || a.localeCompare(b));
  return h('table', { id, class: 'counts' },
    h('thead', {}, h('tr', {}, h('th', {}, name), h('th', { class: 'num' }, 'Subscriptions'))),
    h('tbody', {}, keys.map((k) => h('tr', { [`data-${name.toLowerCase()}`]: k },
      h('td', {}, h('span', { class: `badge ${k}` }, k)), h('td', { class: 'num' }, String(m[k]))))));
}

// billingReport shows GET /v1/billing/report: the monthly recurring
// revenue in each currency (yearly plans count a twelfth), the
// subscriptions by status and the active ones by plan, churn and the
// failed payments of the last 30 days.
function billingReport(r) {
  const mrr = r.mrr || [];
  return h('div', { id: 'billing-report' },
    h('dl', { class: 'facts' },
      h('dt', {}, 'Monthly recurring revenue'),
      h('dd', { id: 'mrr' }, mrr.length ? mrr.flatMap((m, i) => [i ? ' + ' : '', h('span', { 'data-currency': m.currency }, money(m))]) : h('span', { class: 'muted' }, 'none')),
      h('dt', {}, 'Churn, 30 days'),
      h('dd', { id: 'churn' }, pct(r.churn, 1), h('span', { class: 'muted' }, ` (${r.canceled_30d || 0} ended)`)),
      h('dt', {}, 'Failed payments, 30 days'),
      h('dd', { id: 'failed-payments' }, String(r.failed_payments_30d || 0)),
      h('dt', {}, 'As of'), h('dd', {}, when(r.as_of))),
    h('h3', {}, 'Subscriptions by status'), counts('subscriptions-by-status', 'Status', r.subscriptions, SUB_STATUSES),
    h('h3', {}, 'Active subscriptions by plan'), counts('active-by-plan', 'Plan', r.active_by_plan));
}

// reportLoader asks for the billing report at most every REPORT_MS,
// answering the last one in between; stale makes the next call ask.
function reportLoader() {
  let last = null;
  let at = 0;
  const load = async () => {
    if (last && Date.now() - at < REPORT_MS) return last;
    last = await api.billingReport().catch(missing('billing'));
    at = Date.now();
    return last;
  };
  load.stale = () => { last = null; };
  return load;
}

// billingSection shows the billing report, with a button to ask for it
// now.
function billingSection() {
  const load = reportLoader();
  const report = panel(load, billingReport);
  const again = h('button', { type: 'button', id: 'billing-refresh', onclick: () => { load.stale(); report.refresh(); } }, 'Refresh');
  return {
    nodes: [h('p', { class: 'muted who' }, `The report reads every subscription: this page asks for it once every ${REPORT_MS / 1000} s at most. `, again), report.el],
    panels: [report],
  };
}

// keyPrompt asks for the operator key; use gets the key entered. message,
// if any, says why it asks again.
function keyPrompt(message, use) {
  const key = h('input', { name: 'key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'fck.…', 'aria-label': 'Operator key' });
  const form = h('form', { id: 'key-form', class: 'keyform' },
    h('p', { class: 'muted' }, 'The operator page needs an operator API key (fck.…) or the admin token. ',
      'It is kept for this browser tab only and sent to this control plane alone.'),
    field('Operator key', key), h('button', { type: 'submit' }, 'Use key'),
    message && errorBox(message));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const k = key.value.trim();
    if (k) use(k);
  });
  show(h('h1', {}, 'Operator'), form);
  key.focus();
}

// operatorView shows what who may see and refreshes it every REFRESH_MS
// until stop is called; first settles when it has been drawn once.
// on.forget and on.selfRevoked ask for a key again.
function operatorView(who, live, on) {
  const s = sees(who);
  const uploads = new AbortController();
  const panels = [];
  const section = (id, title, ...body) => h('section', { id }, h('h2', {}, title), ...body);
  const add = (p) => { panels.push(p); return p.el; };
  const parts = (sec) => { panels.push(...sec.panels); return sec.nodes; };
  // The squeeze form offers the appliances of the fleet panel's answers.
  const fleetWatchers = [];
  const fleet = () => api.fleet().then((f) => { fleetWatchers.forEach((w) => w(f)); return f; });
  show(
    h('h1', {}, 'Operator'),
    h('p', { class: 'who', id: 'who' }, 'Key ', h('code', {}, who.id), ` · scope ${(who.scopes || []).join(', ')} `,
      h('button', { type: 'button', id: 'forget-key', onclick: on.forget }, 'Forget key')),
    s.fleet && section('fleet-section', 'Fleet', add(panel(fleet, fleetTable))),
    s.fleet && section('sites-section', 'Sites', add(panel(api.sites, sitesTable))),
    s.fleet && section('appliances-section', 'Appliances', parts(appliancesSection(s.admin))),
    s.squeeze && section('squeeze-section', 'Squeeze tests', parts(squeezeSection(s.startSqueeze && s.fleet, (w) => fleetWatchers.push(w)))),
    s.rules && section('rules-section', 'Rules',
      add(panel(() => api.rules().catch(missing('runtime rules')), rulesTable)),
      h('h3', {}, 'Recent changes'),
      add(panel(() => api.rulesAudit(AUDIT_ROWS).catch(missing('the changes to the rules')), auditTable))),
    s.billing && section('billing-section', 'Billing', parts(billingSection())),
    s.qoe && section('qoe-section', 'Quality of experience',
      add(panel(() => api.opsQoE().catch(missing('quality of experience')), qoeTables)),
      h('h3', {}, 'Player errors'),
      add(panel(() => api.opsEvents({ type: 'error', limit: 20 }).catch(missing('player errors')), errorsTable))),
    s.jobs && section('jobs-section', 'Ingest jobs', add(panel(api.jobs, jobsTable))),
    s.upload && section('upload-section', s.createTitle ? 'Upload a title' : 'Upload a video', uploadForm(s.createTitle, uploads.signal)),
    s.admin && section('apikeys-section', 'API keys', parts(apiKeysSection(who, on.selfRevoked))),
  );
  // Each refresh starts when the previous one is done, so a slow API
  // never has requests piling up.
  let timer = null;
  let stopped = false;
  const refresh = async () => {
    await Promise.all(panels.map((p) => p.refresh()));
    if (!stopped && live()) timer = setTimeout(refresh, REFRESH_MS);
  };
  return {
    first: refresh(),
    stop() {
      stopped = true;
      clearTimeout(timer);
      uploads.abort();
    },
  };
}

// opsPage shows the page: the key prompt while the tab holds no key, the
// operator view once the control plane says whose the key is. It returns
// the cleanup. live() says whether the page is still the one shown.
export async function opsPage(live) {
  let stop = () => {};
  let left = false;
  const current = () => live() && !left;
  const ask = (message) => {
    stop();
    stop = () => {};
    if (current()) keyPrompt(message, use);
  };
  const open = async () => {
    let who;
    try {
      who = await api.whoami();
    } catch (err) {
      // A 401 has asked again already (refused below).
      if (err.status !== 401) ask(`Cannot check the key: ${failure(err)}`);
      return;
    }
    if (!current()) return;
    if (who.kind !== 'operator') {
      api.operatorKey.forget();
      ask(`That is ${who.kind === 'appliance' ? 'an appliance credential' : `a ${who.kind} credential`}, not an operator key.`);
      return;
    }
    stop();
    const view = operatorView(who, current, {
      forget: () => { api.operatorKey.forget(); ask(); },
      selfRevoked: () => { api.operatorKey.forget(); ask('You revoked the key this page used: enter another.'); },
    });
    stop = view.stop;
    await view.first;
  };
  const use = (key) => {
    api.operatorKey.set(key);
    return open();
  };
  const refused = () => ask('The control plane refused the key: it is unknown or was revoked. Enter another.');
  api.keyEvents.addEventListener('refused', refused);

  if (api.operatorKey.get()) await open();
  else ask();
  return () => {
    left = true;
    api.keyEvents.removeEventListener('refused', refused);
    stop();
  };
}
