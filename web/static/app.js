// app.js: the viewer pages (catalog, search, title page with the player)
// and the router. Pages are chosen by the URL fragment: #/, #/search?q=,
// #/title/{id}?protocol=hls|dash, #/ops.

import * as api from './api.js';
import { h, show, errorBox } from './ui.js';
import { Player } from './player.js';
import { opsPage } from './ops.js';

// The viewer name keys history and recommendations; no login in a demo.
const viewerInput = document.getElementById('viewer');
viewerInput.value = localStorage.getItem('fillcast.viewer') || 'guest';
viewerInput.addEventListener('change', () => {
  localStorage.setItem('fillcast.viewer', viewerInput.value.trim() || 'guest');
  route();
});
const viewer = () => viewerInput.value.trim() || 'guest';

let current = null; // the page's cleanup, if it has one

// card is one title in a grid: its poster from the appliances, its name.
function card(t, extra) {
  // Without a poster, or when it fails to load, the name's first letter.
  const placeholder = () => h('div', { class: 'noposter' }, (t.name || t.id).slice(0, 1));
  const hasPoster = (t.files || []).some((f) => f.path === 'poster.jpg');
  const img = hasPoster
    ? h('img', { src: api.fileURL(t.id, 'poster.jpg'), alt: '', loading: 'lazy', onerror: () => img.replaceWith(placeholder()) })
    : placeholder();
  return h('a', { class: 'card', href: `#/title/${encodeURIComponent(t.id)}`, 'data-title': t.id },
    img, h('span', { class: 'name' }, t.name || t.id), extra);
}

// row is a titled strip of cards; it hides itself when empty.
function row(label, cards, id) {
  return cards.length ? h('section', { class: 'row', id }, h('h2', {}, label), h('div', { class: 'cards' }, cards)) : null;
}

async function home(live) {
  const [all, hist, recs] = await Promise.all([
    api.titles(),
    api.history(viewer()).catch(() => null),
    api.recommendations(viewer()).catch(() => null),
  ]);
  const byID = new Map(all.map((t) => [t.id, t]));
  const pick = (ids) => ids.map((id) => byID.get(id)).filter((t) => t && t.status === 'ready');
  const cont = hist ? (hist.continue_watching || []) : [];
  const contCards = cont.map((e) => byID.get(e.title) && card(byID.get(e.title),
    h('progress', { max: 1, value: e.progress || 0, 'aria-label': 'watched' }))).filter(Boolean);
  const recCards = recs ? pick(recs.results.map((r) => r.id)).map((t) => card(t)) : [];
  const ready = all.filter((t) => t.status === 'ready');
  const others = all.filter((t) => t.status !== 'ready');
  if (!live()) return;
  show(
    row('Continue watching', contCards, 'continue'),
    row(recs && recs.source === 'als' ? 'Recommended for you' : 'Popular now', recCards, 'recommended'),
    h('section', { class: 'row', id: 'catalog' }, h('h2', {}, `Catalog (${ready.length})`),
      ready.length ? h('div', { class: 'grid' }, ready.map((t) => card(t))) : h('p', {}, 'No titles are ready yet: upload one on the Operator page.')),
    others.length ? h('p', { class: 'muted' }, `${others.length} more being ingested: `, others.map((t) => `${t.name || t.id} (${t.status})`).join(', ')) : null,
  );
}

async function searchPage(params, live) {
  const q = params.get('q') || '';
  const genre = params.get('genre') || '';
  document.getElementById('search').value = q;
  const [res, all] = await Promise.all([api.search(q, genre), api.titles()]);
  const byID = new Map(all.map((t) => [t.id, t]));
  const facets = res.facets && res.facets.genre ? res.facets.genre : [];
  if (!live()) return;
  show(
    h('h1', {}, `Results for “${q}”`, genre ? ` in ${genre}` : ''),
    facets.length ? h('div', { class: 'facets' }, facets.map((f) =>
      h('a', { href: `#/search?q=${encodeURIComponent(q)}&genre=${encodeURIComponent(f.value)}`, class: f.value === genre ? 'on' : '' }, `${f.value} (${f.count})`))) : null,
    res.results.length
      ? h('div', { class: 'grid', id: 'results' }, res.results.map((r) => card(byID.get(r.id) || { id: r.id, name: r.name })))
      : h('p', { id: 'results' }, 'Nothing matches. Try fewer or other words.'),
  );
}

async function titlePage(id, params, live) {
  const protocol = params.get('protocol') === 'dash' ? 'dash' : 'hls';
  const t = await api.title(id);
  if (!live()) return null;
  const video = h('video', { id: 'video', controls: true, muted: true, autoplay: true, playsinline: true });
  video.muted = true; // autoplay is allowed only muted
  const info = h('dl', { class: 'playing', id: 'playing' });
  const downloads = (t.files || []).filter((f) => /^download\/\d+p\.mp4$/.test(f.path));
  const languages = [...new Set((t.renditions || []).filter((r) => r.kind === 'audio' && r.language).map((r) => r.language))];
  const audioButtons = h('p', { class: 'protocols', id: 'audio' });
  const similar = h('div', { class: 'cards', id: 'similar' });
  show(
    h('div', { class: 'title' },
      h('div', { class: 'stage' }, video, info),
      h('div', { class: 'about' },
        h('h1', {}, t.name || t.id),
        h('p', { class: 'muted' }, [t.year, (t.genres || []).join(', ')].filter(Boolean).join(' · ')),
        h('p', {}, t.description || ''),
        t.cast && t.cast.length ? h('p', { class: 'muted' }, 'With ', t.cast.join(', ')) : null,
        h('p', { class: 'protocols' }, 'Play over ',
          h('a', { href: `#/title/${encodeURIComponent(id)}?protocol=hls`, class: protocol === 'hls' ? 'on' : '' }, 'HLS'), ' ',
          h('a', { href: `#/title/${encodeURIComponent(id)}?protocol=dash`, class: protocol === 'dash' ? 'on' : '' }, 'DASH')),
        languages.length > 1 ? audioButtons : null,
        downloads.length ? h('p', { class: 'downloads' }, 'Download MP4: ', downloads.map((f) =>
          h('a', { href: api.fileURL(id, f.path), download: `${id}-${f.path.slice(9)}` }, f.path.slice(9, -4), ' '))) : null)),
    h('section', { class: 'row' }, h('h2', {}, 'More like this'), similar),
  );
  // From the recommender's item factors; before its first model, titles
  // that share a genre.
  Promise.all([api.similar(id).catch(() => null), api.titles()]).then(([res, all]) => {
    const byID = new Map(all.map((x) => [x.id, x]));
    const genres = new Set(t.genres || []);
    const picks = res
      ? res.results.map((r) => byID.get(r.id)).filter(Boolean)
      : all.filter((x) => x.id !== id && x.status === 'ready' && (x.genres || []).some((g) => genres.has(g)));
    similar.replaceChildren(...(picks.length ? picks.map((x) => card(x)) : [h('p', { class: 'muted' }, 'Nothing similar yet.')]));
  }).catch((err) => similar.replaceChildren(errorBox(err.message)));

  if (t.status !== 'ready') {
    info.replaceChildren(errorBox(`This title is ${t.status}; it plays once ingest is done.`));
    return null;
  }
  const names = await applianceNames();
  if (!live()) return null;
  const player = new Player(video, {
    prefer: params.get('engine') || '',
    onState: (s) => {
      window.fillcastPlayer = s; // read by the browser tests
      info.replaceChildren(...[
        h('dt', {}, 'From'), h('dd', { id: 'from' }, names.get(s.host) || s.host, names.get(s.host) ? ` (${s.host})` : ''),
        h('dt', {}, 'Rendition'), h('dd', { id: 'rendition' }, s.rendition || '…'),
        h('dt', {}, 'Player'), h('dd', {}, `${s.protocol.toUpperCase()} · ${s.engine === 'native' ? 'browser' : 'shaka-player'}`),
        s.audio ? h('dt', {}, 'Audio') : null, s.audio ? h('dd', { id: 'audio-lang' }, s.audio) : null,
        s.failovers ? h('dt', {}, 'Fail-overs') : null, s.failovers ? h('dd', { id: 'failovers' }, `${s.failovers}: ${s.error}`) : null,
      ].filter(Boolean));
    },
  });
  audioButtons.replaceChildren('Audio ', ...languages.map((lang) => h('a', { href: '#', 'data-lang': lang, onclick: (e) => {
    e.preventDefault();
    for (const b of audioButtons.querySelectorAll('a')) b.classList.toggle('on', b === e.currentTarget);
    player.selectAudio(lang).catch((err) => info.append(errorBox(`Audio: ${err.message}`)));
  } }, lang)), ' ');
  const events = viewingEvents(video, id);
  player.load(id, protocol).catch((err) => info.replaceChildren(errorBox(`Playback: ${err.message}`)));
  return async () => {
    events.stop();
    await player.destroy();
  };
}

// applianceNames maps appliance host:port to id for the "From" line.
async function applianceNames() {
  const m = new Map();
  try {
    for (const a of await api.fleet()) if (a.url) m.set(new URL(a.url).host, a.id);
  } catch { /* names are a nicety */ }
  return m;
}

// viewingEvents reports play, progress (every 10 s), stop and complete.
function viewingEvents(video, title) {
  let started = false;
  const send = (type) => api.sendEvents([{
    user: viewer(), title, type, position_s: video.currentTime || 0,
    duration_s: Number.isFinite(video.duration) ? video.duration : 0, ts: new Date().toISOString(),
  }]);
  const onPlaying = () => { if (!started) { started = true; send('play'); } };
  const onEnded = () => send('complete');
  const onPause = () => { if (!video.ended) send('stop'); };
  video.addEventListener('playing', onPlaying);
  video.addEventListener('ended', onEnded);
  video.addEventListener('pause', onPause);
  const tick = setInterval(() => { if (started && !video.paused) send('progress'); }, 10000);
  return {
    stop() {
      clearInterval(tick);
      video.removeEventListener('playing', onPlaying);
      video.removeEventListener('ended', onEnded);
      video.removeEventListener('pause', onPause);
      if (started && !video.ended) send('stop');
    },
  };
}

// route shows the page the fragment names. A page that is still loading
// when the fragment changes again must not draw over the newer one: each
// page gets live(), true while it is still the page asked for, checks it
// after every wait, and its cleanup runs at once if it finishes late.
let routeSeq = 0;
async function route() {
  const seq = ++routeSeq;
  const live = () => seq === routeSeq;
  if (current) {
    const cleanup = current;
    current = null;
    await cleanup();
  }
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  list.hidden = true;
  if (path !== '/search') input.value = '';
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('on', path === (a.dataset.nav === 'ops' ? '/ops' : '/'));
  try {
    let cleanup = null;
    if (path === '/' || path === '') await home(live);
    else if (path === '/search') await searchPage(params, live);
    else if (path.startsWith('/title/')) cleanup = await titlePage(decodeURIComponent(path.slice(7)), params, live);
    else if (path === '/ops') cleanup = await opsPage(live);
    else show(errorBox(`No page ${path}`), h('a', { href: '#/' }, 'Back to the catalog'));
    if (!live()) {
      if (cleanup) await cleanup();
      return;
    }
    current = cleanup;
  } catch (err) {
    if (live()) show(errorBox(err.message || String(err)));
  }
  if (live()) document.body.dataset.page = path.split('/')[1] || 'home';
}

// Search with suggestions: names that start with what was typed.
const form = document.getElementById('search-form');
const input = document.getElementById('search');
const list = document.getElementById('suggest');
let pending = 0;
input.addEventListener('input', () => {
  const text = input.value.trim();
  const n = ++pending;
  if (text.length < 2) { list.hidden = true; return; }
  setTimeout(async () => {
    if (n !== pending) return;
    const res = await api.suggest(text).catch(() => null);
    if (n !== pending || !res) return;
    list.replaceChildren(...res.results.map((r) => h('li', { role: 'option' },
      h('a', { href: `#/title/${encodeURIComponent(r.id)}`, onclick: () => { list.hidden = true; } }, r.name))));
    list.hidden = res.results.length === 0;
  }, 120);
});
input.addEventListener('blur', () => setTimeout(() => { list.hidden = true; }, 200));
form.addEventListener('submit', (e) => {
  e.preventDefault();
  list.hidden = true;
  pending++;
  location.hash = `#/search?q=${encodeURIComponent(input.value.trim())}`;
});

window.addEventListener('hashchange', route);
route();
