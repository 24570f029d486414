// ops.js: the operator page: the fleet (health, load, hit ratio, cache
// use, fill progress), the sites, ingest jobs with their progress, and an
// upload form that creates a title and ingests a file through the API.

import * as api from './api.js';
import { h, show, bytes, bits, pct, meter, errorBox } from './ui.js';

const REFRESH_MS = 2000;

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

// uploadForm creates the title (status new) and posts the file to its
// ingest endpoint, showing upload progress; the job then appears above.
function uploadForm() {
  const token = h('input', { name: 'token', type: 'password', required: true, autocomplete: 'off', placeholder: 'admin token' });
  token.value = sessionStorage.getItem('fillcast.admin') || '';
  const field = (label, el) => h('label', {}, h('span', {}, label), el);
  const id = h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9_][A-Za-z0-9_\\-]{0,63}', title: 'letters, digits, - and _', placeholder: 'my-title' });
  const name = h('input', { name: 'name', required: true, maxlength: 200 });
  const desc = h('textarea', { name: 'description', rows: 2, maxlength: 2000 });
  const genres = h('input', { name: 'genres', placeholder: 'drama, comedy' });
  const year = h('input', { name: 'year', type: 'number', min: 1888, max: 2100 });
  const file = h('input', { name: 'file', type: 'file', accept: 'video/*', required: true });
  const status = h('p', { class: 'muted', id: 'upload-status' });
  const form = h('form', { id: 'upload', class: 'upload' },
    field('Title id', id), field('Name', name), field('Description', desc), field('Genres', genres), field('Year', year),
    field('Video file', file), field('Admin token', token), h('button', { type: 'submit' }, 'Upload and ingest'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem('fillcast.admin', token.value);
    const t = { id: id.value.trim(), name: name.value.trim(), description: desc.value.trim(), status: 'new',
      genres: genres.value.split(',').map((g) => g.trim()).filter(Boolean), year: Number(year.value) || 0 };
    try {
      status.textContent = 'Creating the title…';
      await api.call('/v1/titles', api.admin(token.value, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(t) }))
        .catch((err) => { if (err.status !== 409) throw err; });
      const job = await upload(`/v1/titles/${encodeURIComponent(t.id)}/ingest`, token.value, file.files[0],
        (p) => { status.textContent = `Uploading… ${Math.round(100 * p)}%`; });
      status.textContent = `Uploaded: job ${job.id} is transcoding (see the jobs table).`;
    } catch (err) {
      status.replaceChildren(errorBox(`Upload failed: ${err.message}`));
    }
  });
  return form;
}

// uploads holds the uploads in progress, aborted when the page is left.
const uploads = {
  live: new Set(),
  abort() {
    for (const xhr of this.live) xhr.abort();
    this.live.clear();
  },
};

// upload posts file as multipart form data with progress (fetch cannot
// report upload progress; XMLHttpRequest can).
function upload(path, token, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    uploads.live.add(xhr);
    xhr.addEventListener('loadend', () => uploads.live.delete(xhr));
    xhr.addEventListener('abort', () => reject(new Error('upload cancelled')));
    xhr.open('POST', path);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener('load', () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body.error || `${xhr.status} ${xhr.statusText}`));
    });
    xhr.addEventListener('error', () => reject(new Error('network error')));
    const fd = new FormData();
    fd.append('file', file);
    xhr.send(fd);
  });
}

// opsPage shows the page and refreshes its tables until left; it returns
// the cleanup. live() says whether the page is still the one shown.
export async function opsPage(live) {
  const fleetBox = h('div', {}, 'Loading…');
  const sitesBox = h('div');
  const jobsBox = h('div');
  show(
    h('h1', {}, 'Operator'),
    h('section', {}, h('h2', {}, 'Fleet'), fleetBox),
    h('section', {}, h('h2', {}, 'Sites'), sitesBox),
    h('section', {}, h('h2', {}, 'Ingest jobs'), jobsBox),
    h('section', {}, h('h2', {}, 'Upload a title'), uploadForm()),
  );
  const box = (el, res, table) => {
    try {
      el.replaceChildren(res instanceof Error ? errorBox(res.message) : table(res));
    } catch (err) {
      el.replaceChildren(errorBox(`cannot show the answer: ${err.message}`));
    }
  };
  // Each refresh starts when the previous one is done, so a slow API
  // never has requests piling up.
  let timer = null;
  let stopped = false;
  const refresh = async () => {
    const [fleet, sites, jobs] = await Promise.all([api.fleet(), api.sites(), api.jobs()].map((p) => p.catch((e) => e)));
    box(fleetBox, fleet, fleetTable);
    box(sitesBox, sites, sitesTable);
    box(jobsBox, jobs, jobsTable);
    if (!stopped && live()) timer = setTimeout(refresh, REFRESH_MS);
  };
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    uploads.abort();
  };
}
