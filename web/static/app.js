// app.js: the viewer pages and the router. Pages are chosen by the URL
// fragment. Signed out, the app offers #/signin and #/signup (with the
// plans on offer; account.js has the account's pages) and nothing else
// but the operator page (#/ops, which
// takes an operator key instead). Signed in: the profile picker
// (#/profiles, shown after every sign-in), the catalog (#/), search
// (#/search?q=), the title page with the player
// (#/title/{id}?protocol=hls|dash) and the account (#/account;
// #/account?section=billing opens at its plan and billing). The
// session is the HttpOnly cookie the control plane sets; the page keeps
// only the profile picked (api.profileChoice), sent with every call.
// What the viewer is shown and opens (impression and click events) and
// the searches run go to the event queue (events.js), beside the
// player's own events.

import * as api from './api.js';
import { h, show, errorBox } from './ui.js';
import { accountPages } from './account.js';
import { Player } from './player.js';
import { opsPage } from './ops.js';
import { events } from './events.js';

// Pages that need no viewer.
const PUBLIC = new Set(['/signin', '/signup', '/ops']);

// me is GET /v1/account: the account, its plan, profiles and streams,
// and the profile in use; null when signed out, undefined before the
// first answer.
let me;

// loadMe asks who is signed in and redraws the header.
async function loadMe() {
  try {
    me = await api.account();
  } catch (err) {
    if (err.status === 401) me = null;
    else if (err.status === 400 && /X-Fillcast-Profile/.test(err.message)) me = await api.account(); // the profile picked is gone (api forgot it): the first one
    else throw err;
  }
  drawHeader();
  return me;
}

const profileOf = (id) => (me ? me.profiles.find((p) => p.id === id) : null);

// drawHeader shows the profile in use and the account, or sign-in links.
function drawHeader() {
  const box = document.getElementById('me');
  form.hidden = !me;
  document.body.dataset.signedIn = me ? 'yes' : 'no';
  if (!me) {
    box.replaceChildren(h('a', { href: '#/signin', id: 'nav-signin' }, 'Sign in'), h('a', { href: '#/signup', class: 'cta' }, 'Sign up'));
    return;
  }
  const p = profileOf(me.profile);
  box.replaceChildren(
    h('a', { href: '#/profiles', id: 'current-profile', title: 'Switch profile', 'data-profile': me.profile },
      h('span', { class: 'avatar' }, (p ? p.name : '?').slice(0, 1)), p ? p.name : '', p && p.kids ? h('span', { class: 'badge kids' }, 'Kids') : null),
    h('a', { href: '#/account', 'data-nav': 'account' }, 'Account'));
}

let current = null; // the page's cleanup, if it has one

// card is one title in a grid: its poster from the appliances, its name.
function card(t, extra) {
  // Without a poster, or when it fails to load, the name's first letter.
  const placeholder = () => h('div', { class: 'noposter' }, (t.name || t.id).slice(0, 1));
  const poster = api.posterURL(t);
  const img = poster
    ? h('img', { src: poster, alt: '', loading: 'lazy', onerror: () => img.replaceWith(placeholder()) })
    : placeholder();
  return h('a', { class: 'card', href: `#/title/${encodeURIComponent(t.id)}`, 'data-title': t.id },
    img, h('span', { class: 'name' }, t.name || t.id), extra);
}

// shown reports the cards of a page view: an impression event for each
// title the first time its card is at least half in view (once per
// title, whichever row shows it first), in the row and at the rank
// track gave it. Clicks on the cards are reported by the listener on
// the view below. stop ends it with the page.
function shown() {
  const seen = new Set();
  let stopped = false; // after stop, a row drawn late (similar titles) is not watched
  const report = (card) => {
    const title = card.dataset.title;
    if (!title || seen.has(title)) return;
    seen.add(title);
    events.push({ type: 'impression', title, row: card.dataset.row, rank: Number(card.dataset.rank) });
  };
  const io = typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        io.unobserve(e.target);
        report(e.target);
      }
    }, { threshold: 0.5 })
    : null;
  return {
    // track names the row of cards and their ranks (from from, 0 unless
    // the cards follow others in the row), and watches them come into
    // view; it returns cards.
    track(row, cards, from = 0) {
      cards.forEach((c, i) => {
        c.dataset.row = row;
        c.dataset.rank = String(from + i);
        if (stopped) return;
        if (io) io.observe(c);
        else report(c);
      });
      return cards;
    },
    stop() {
      stopped = true;
      if (io) io.disconnect();
    },
  };
}

// A title opened from a row is a click of that row and rank.
document.getElementById('view').addEventListener('click', (e) => {
  const card = e.target.closest('a.card[data-row]');
  if (card) events.push({ type: 'click', title: card.dataset.title, row: card.dataset.row, rank: Number(card.dataset.rank) });
});

// row is a titled strip of cards; it hides itself when empty.
function row(label, cards, id) {
  return cards.length ? h('section', { class: 'row', id }, h('h2', {}, label), h('div', { class: 'cards' }, cards)) : null;
}

// kids says whether the profile in use is a kids profile: the control
// plane shows it only titles rated all and 7+.
const kids = () => Boolean(profileOf(me.profile)?.kids);

// refusal is what the title page shows instead of the player when the
// control plane says no: its own words, and where to go from there. A
// 402 (the subscription does not entitle the account to play: a trial
// over, a declined payment, a subscription ended) leads to the account's
// plan and billing.
function refusal(err) {
  return h('div', { class: 'refusal', id: 'refusal', role: 'alert', 'data-status': err.status || null },
    h('p', {}, err.message || String(err)),
    err.status === 402 ? h('p', {}, h('a', { href: '#/account?section=billing', id: 'refusal-billing', class: 'cta' }, 'Choose a plan and pay')) : null,
    err.status === 429 ? h('p', {}, h('a', { href: '#/account' }, 'See what is playing on your account'), ' or stop playing on another screen.') : null,
    err.status === 403 ? h('p', {}, h('a', { href: '#/profiles' }, 'Switch profile'), ' or ', h('a', { href: '#/' }, 'browse the catalog'), '.') : null);
}

// CATALOG_PAGE is how many titles the catalog grid shows at first and
// adds on each "More": a few rows, whose posters (each a call of the
// control plane) stay within a viewer's burst of requests.
const CATALOG_PAGE = 24;

// readyPage answers the next page of ready titles after cursor. The
// control plane looks at a bounded number of titles per call, so a page
// can come back short, or empty with a cursor to go on from: it asks
// again (a few times at most) until it has some titles or the end.
async function readyPage(cursor = '') {
  let page;
  for (let calls = 0; calls < 10; calls++) {
    page = await api.listTitles({ status: 'ready', limit: CATALOG_PAGE, cursor });
    cursor = page.next_cursor || '';
    if ((page.titles || []).length || !cursor) break;
  }
  return page;
}

// home shows continue watching, the recommendations, and the ready
// titles a page at a time; the titles of the first two rows are looked
// up by id, so the page never lists the whole catalog.
async function home(live) {
  const view = shown();
  const [first, ingesting, hist, recs] = await Promise.all([
    readyPage(),
    api.listTitles({ status: 'ingesting', limit: 10 }).catch(() => null),
    api.history().catch(() => null),
    api.recommendations().catch(() => null),
  ]);
  const cont = hist ? (hist.continue_watching || []) : [];
  const recIDs = recs ? (recs.results || []).map((r) => r.id) : [];
  const looked = await api.titlesByID([...cont.map((e) => e.title), ...recIDs]).catch(() => []);
  const byID = new Map(looked.map((t) => [t.id, t]));
  const contCards = view.track('continue', cont.map((e) => byID.get(e.title) && card(byID.get(e.title),
    h('progress', { max: 1, value: e.progress || 0, 'aria-label': 'watched' }))).filter(Boolean));
  const personal = recs && recs.source === 'als';
  const recCards = recs ? view.track(personal ? 'recommended' : 'popular', recIDs.map((id) => byID.get(id)).filter((t) => t && t.status === 'ready').map((t) => card(t))) : [];
  const others = ingesting ? ingesting.titles || [] : [];
  if (!live()) return view.stop;
  const ready = first.titles || [];
  const grid = h('div', { class: 'grid' }, view.track('catalog', ready.map((t) => card(t))));
  const heading = h('h2', {}, `Catalog (${ready.length}${first.next_cursor ? '+' : ''})`);
  // More asks for the next page after the last one shown.
  let cursor = first.next_cursor || '';
  const more = h('button', { type: 'button', id: 'catalog-more', hidden: !cursor, onclick: async () => {
    more.disabled = true;
    try {
      const page = await readyPage(cursor);
      grid.append(...view.track('catalog', (page.titles || []).map((t) => card(t)), grid.children.length));
      cursor = page.next_cursor || '';
      heading.textContent = `Catalog (${grid.children.length}${cursor ? '+' : ''})`;
      more.hidden = !cursor;
    } catch (err) {
      more.after(errorBox(err.message));
    }
    more.disabled = false;
  } }, 'More');
  show(
    row('Continue watching', contCards, 'continue'),
    row(personal ? 'Recommended for you' : 'Popular now', recCards, 'recommended'),
    h('section', { class: 'row', id: 'catalog' }, heading,
      ready.length ? [grid, more]
        : h('p', {}, kids() ? 'Nothing for kids is ready yet.' : 'No titles are ready yet: upload one on the Operator page.')),
    others.length ? h('p', { class: 'muted' }, `${others.length}${ingesting.next_cursor ? '+' : ''} more being ingested: `, others.map((t) => t.name || t.id).join(', ')) : null,
  );
  return view.stop;
}

async function searchPage(params, live) {
  const q = params.get('q') || '';
  const genre = params.get('genre') || '';
  document.getElementById('search').value = q;
  const res = await api.search(q, genre);
  res.results = res.results || [];
  const byID = new Map((await api.titlesByID(res.results.map((r) => r.id))).map((t) => [t.id, t]));
  const facets = res.facets && res.facets.genre ? res.facets.genre : [];
  if (!live()) return null;
  if (q) events.push({ type: 'search', query: q.slice(0, 256), results: Math.min(Number(res.total) || res.results.length, 1000000) });
  const view = shown();
  show(
    h('h1', {}, `Results for “${q}”`, genre ? ` in ${genre}` : ''),
    facets.length ? h('div', { class: 'facets' }, facets.map((f) =>
      h('a', { href: `#/search?q=${encodeURIComponent(q)}&genre=${encodeURIComponent(f.value)}`, class: f.value === genre ? 'on' : '' }, `${f.value} (${f.count})`))) : null,
    res.results.length
      ? h('div', { class: 'grid', id: 'results' }, view.track('search', res.results.map((r) => card(byID.get(r.id) || { id: r.id, name: r.name }))))
      : h('p', { id: 'results' }, 'Nothing matches. Try fewer or other words.'),
  );
  return view.stop;
}

// SIMILAR is how many titles the "More like this" row shows at most.
const SIMILAR = 8;

// similarTitles answers the titles like t: the recommender's, looked up
// by id; before its first model, ready titles of t's genres (a page of
// each of its first three).
async function similarTitles(t) {
  const res = await api.similar(t.id, SIMILAR).catch(() => null);
  if (res) return api.titlesByID((res.results || []).map((r) => r.id));
  const pages = await Promise.all((t.genres || []).slice(0, 3).map((genre) =>
    api.listTitles({ genre, status: 'ready', limit: SIMILAR + 1 })));
  const picks = new Map();
  for (const page of pages) for (const x of page.titles || []) if (x.id !== t.id) picks.set(x.id, x);
  return [...picks.values()].slice(0, SIMILAR);
}

async function titlePage(id, params, live) {
  const protocol = params.get('protocol') === 'dash' ? 'dash' : 'hls';
  let t;
  try {
    t = await api.title(id);
  } catch (err) {
    if (err.status !== 403) throw err;
    if (live()) show(refusal(err)); // a kids profile and a title not rated for it
    return null;
  }
  if (!live()) return null;
  const video = h('video', { id: 'video', controls: true, muted: true, autoplay: true, playsinline: true });
  video.muted = true; // autoplay is allowed only muted
  const info = h('dl', { class: 'playing', id: 'playing' });
  const downloads = (t.downloads || []).filter((p) => /^download\/\d+p\.mp4$/.test(p));
  const languages = [...new Set((t.renditions || []).filter((r) => r.kind === 'audio' && r.language).map((r) => r.language))];
  const audioButtons = h('p', { class: 'protocols', id: 'audio' });
  const similar = h('div', { class: 'cards', id: 'similar' });
  const view = shown();
  const stage = h('div', { class: 'stage' }, video, info);
  show(
    h('div', { class: 'title' },
      stage,
      h('div', { class: 'about' },
        h('h1', {}, t.name || t.id),
        h('p', { class: 'muted' }, [t.year, (t.genres || []).join(', '), t.maturity && `rated ${t.maturity}`].filter(Boolean).join(' · ')),
        h('p', {}, t.description || ''),
        t.cast && t.cast.length ? h('p', { class: 'muted' }, 'With ', t.cast.join(', ')) : null,
        h('p', { class: 'protocols' }, 'Play over ',
          h('a', { href: `#/title/${encodeURIComponent(id)}?protocol=hls`, class: protocol === 'hls' ? 'on' : '' }, 'HLS'), ' ',
          h('a', { href: `#/title/${encodeURIComponent(id)}?protocol=dash`, class: protocol === 'dash' ? 'on' : '' }, 'DASH')),
        languages.length > 1 ? audioButtons : null,
        downloads.length && me.plan.downloads ? h('p', { class: 'downloads' }, 'Download MP4: ', downloads.filter((p) => parseInt(p.slice(9), 10) <= me.plan.max_height).map((p) =>
          h('a', { href: api.fileURL(id, p), download: `${id}-${p.slice(9)}` }, p.slice(9, -4), ' '))) : null,
        downloads.length && !me.plan.downloads ? h('p', { class: 'muted', id: 'no-downloads' }, `Downloads are not part of the ${me.plan.name || me.plan.id} plan.`) : null)),
    h('section', { class: 'row' }, h('h2', {}, 'More like this'), similar),
  );
  // From the recommender's item factors; before its first model, titles
  // that share a genre.
  similarTitles(t).then((picks) => {
    similar.replaceChildren(...(picks.length ? view.track('similar', picks.map((x) => card(x))) : [h('p', { class: 'muted' }, 'Nothing similar yet.')]));
  }).catch((err) => similar.replaceChildren(errorBox(err.message)));

  if (t.status !== 'ready') {
    info.replaceChildren(errorBox(`This title is ${t.status}; it plays once ingest is done.`));
    return view.stop;
  }
  const names = await applianceNames();
  if (!live()) return view.stop;
  const refused = (err) => stage.replaceChildren(refusal(err));
  const player = new Player(video, {
    prefer: params.get('engine') || '',
    onRefused: refused,
    onState: (s) => {
      window.fillcastPlayer = s; // read by the browser tests
      info.replaceChildren(...[
        h('dt', {}, 'From'), h('dd', { id: 'from' }, names.get(s.host) || s.host, names.get(s.host) ? ` (${s.host})` : ''),
        h('dt', {}, 'Rendition'), h('dd', { id: 'rendition' }, s.rendition || '…'),
        h('dt', {}, 'Player'), h('dd', {}, `${s.protocol.toUpperCase()} · ${s.engine === 'native' ? 'browser' : 'shaka-player'}`),
        h('dt', {}, 'Plan'), h('dd', { id: 'plan-limit' }, `up to ${me.plan.max_height}p`),
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
  player.load(id, protocol).catch((err) => {
    if (!live()) return;
    if (err instanceof api.APIError) refused(err); // the stream limit, the plan, a rating, payment: the API's words
    else info.replaceChildren(errorBox(`Playback: ${err.message}`));
  });
  // Leaving the page (closing the tab, reloading) reports where it
  // stopped and frees the screen.
  const leave = () => player.leave();
  window.addEventListener('pagehide', leave);
  return async () => {
    window.removeEventListener('pagehide', leave);
    view.stop();
    await player.destroy();
  };
}

// go shows the page of hash, also when it is the one in the address bar
// already (a page drawn in place of another, as sign-in is).
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// signedIn takes a fresh session to the profile picker: every sign-in
// asks who is watching.
async function signedIn() {
  api.profileChoice.forget();
  await loadMe();
  go('#/profiles');
}

// signedOut forgets the viewer and shows the sign-in page.
function signedOut() {
  me = null;
  api.profileChoice.forget();
  drawHeader();
  go('#/signin');
}

const { signInPage, signUpPage, profilesPage, accountPage } = accountPages({
  me: () => me, loadMe, go, route, profileOf, signedIn, signedOut,
});

// applianceNames maps appliance host:port to id for the "From" line, for
// an operator whose key this tab holds (the fleet is not a viewer's).
async function applianceNames() {
  const m = new Map();
  if (!api.operatorKey.get()) return m;
  try {
    for (const a of await api.fleet()) if (a.url) m.set(new URL(a.url).host, a.id);
  } catch { /* names are a nicety */ }
  return m;
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
  let [path, query] = (location.hash.slice(1) || '/').split('?');
  list.hidden = true;
  if (path !== '/search') input.value = '';
  const params = new URLSearchParams(query || '');
  try {
    if (me === undefined) await loadMe();
    if (!live()) return;
    // Signed out, every viewer page is the sign-in page.
    if (!me && !PUBLIC.has(path)) path = '/signin';
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('on', path === (a.dataset.nav === 'home' ? '/' : `/${a.dataset.nav}`));
    let cleanup = null;
    if (path === '/' || path === '') cleanup = await home(live);
    else if (path === '/signin') signInPage();
    else if (path === '/signup') await signUpPage(live);
    else if (path === '/profiles') await profilesPage(live);
    else if (path === '/account') await accountPage(live, params);
    else if (path === '/search') cleanup = await searchPage(params, live);
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

// A session lost while signed in (expired, or signed out everywhere from
// another screen) shows the sign-in page; a profile deleted elsewhere,
// the profile picker.
api.sessionEvents.addEventListener('signedout', () => {
  if (!me) return;
  me = null;
  drawHeader();
  route();
});
api.sessionEvents.addEventListener('noprofile', () => {
  if (me) location.hash = '#/profiles';
});

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
    const results = res.results || [];
    list.replaceChildren(...results.map((r, rank) => h('li', { role: 'option' },
      h('a', { href: `#/title/${encodeURIComponent(r.id)}`, onclick: () => {
        list.hidden = true;
        events.push({ type: 'click', title: r.id, row: 'suggest', rank });
      } }, r.name))));
    list.hidden = results.length === 0;
  }, 120);
});
input.addEventListener('blur', () => setTimeout(() => { list.hidden = true; }, 200));
form.addEventListener('submit', (e) => {
  e.preventDefault();
  list.hidden = true;
  pending++;
  location.hash = `#/search?q=${encodeURIComponent(input.value.trim())}`;
});

events.start();
window.addEventListener('hashchange', route);
// A page restored from the back-forward cache gave its screen up when it
// was left: draw it again, which asks for playback again.
window.addEventListener('pageshow', (e) => { if (e.persisted) route(); });
route();
