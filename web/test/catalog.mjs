// catalog.mjs: the web pages over a large catalog, in Debian's Chromium
// with playwright-core. The Go test demo/catalog_browser_test.go
// registers the catalog (5,000 titles) and runs this script, which signs
// the premium viewer in, walks the catalog page by page, continue
// watching, search, a title page, the account page and the operator
// page's upload form, and then reads the browser's own network log
// (DevTools Network events): no response may be larger than 1 MB, and
// every call of the listing must ask for a page or for ids.
//
// Environment (besides lib.mjs's): FILLCAST_VIEWER ("email password" of
// the premium viewer), FILLCAST_INGEST_KEY (an ingest-scoped operator
// key, whose upload form offers the titles waiting for their video), and
// FILLCAST_CATALOG, JSON: {ready, new, last, word}: how many titles are
// ready and how many wait (status new), the ready title the viewer has
// part-watched, and a word of some titles' names.

import { join } from 'node:path';
import { base, out, check, launch, until, watch, signIn, pickProfile, useKey } from './lib.mjs';

const [email, password] = (process.env.FILLCAST_VIEWER || '').split(' ');
const ingestKey = process.env.FILLCAST_INGEST_KEY;
const want = JSON.parse(process.env.FILLCAST_CATALOG || '{}');

// MB is the most any one response may carry.
const MB = 1000 * 1000;

// networkLog records every response the page receives through a
// DevTools session: its URL and status, its Content-Length, the bytes of
// its body as received (decoded) and, once it has finished loading, the
// bytes it took on the wire (encodedDataLength).
async function networkLog(page) {
  const cdp = await page.context().newCDPSession(page);
  const byID = new Map();
  const entry = (id) => {
    if (!byID.has(id)) byID.set(id, { url: '', method: '', status: 0, contentLength: 0, decoded: 0, encoded: 0, finished: false });
    return byID.get(id);
  };
  cdp.on('Network.requestWillBeSent', (e) => Object.assign(entry(e.requestId), { url: e.request.url, method: e.request.method }));
  cdp.on('Network.responseReceived', (e) => {
    const headers = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
    Object.assign(entry(e.requestId), { url: e.response.url, status: e.response.status, contentLength: Number(headers['content-length'] || 0) });
  });
  cdp.on('Network.dataReceived', (e) => { entry(e.requestId).decoded += e.dataLength; });
  cdp.on('Network.loadingFinished', (e) => Object.assign(entry(e.requestId), { encoded: e.encodedDataLength, finished: true }));
  await cdp.send('Network.enable');
  return byID;
}

// size is the largest of what a response's log entry says of its size.
const size = (e) => Math.max(e.contentLength, e.decoded, e.encoded);

// untilReloaded opens url, and reloads it every three seconds, until
// fn (run in the page) returns a truthy value: for what the control
// plane learns a little after the fact (events, the search index).
async function untilReloaded(page, url, what, fn, arg, timeout = 60000) {
  const deadline = Date.now() + timeout;
  await page.goto(url);
  for (;;) {
    try {
      return await until(page, what, fn, arg, 3000);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${err.message}, reloaded for ${timeout / 1000}s`);
    }
    await page.reload();
  }
}

// cardIDs answers the titles of the cards under selector (run in the page).
const cardIDs = (selector) => [...document.querySelectorAll(`${selector} .card`)].map((c) => ({ id: c.dataset.title, rank: Number(c.dataset.rank), name: c.querySelector('.name').textContent }));

const browser = await launch();
let failed = false;
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  watch(page, errors);
  const log = await networkLog(page);

  // Home: the first page of ready titles in id order, then the next one
  // with More, ranks going on.
  await signIn(page, email, password);
  await pickProfile(page, false);
  const first = await page.evaluate(cardIDs, '#catalog');
  const ids = first.map((c) => c.id);
  check(first.length >= 20 && first.length < want.ready && ids[0] === 'cat-00000' && ids.every((id, i) => i === 0 || id > ids[i - 1]),
    `the catalog's first page: ${ids.length} titles ${ids.slice(0, 3)}…: want a page of the ${want.ready} ready titles, from cat-00000, in id order`);
  check(await page.isVisible('#catalog-more'), 'no More button under the first page of the catalog');
  await page.click('#catalog-more');
  const two = await until(page, 'More shows the next page', (n) => {
    const cards = [...document.querySelectorAll('#catalog .card')];
    return cards.length > n ? cards.map((c) => [c.dataset.title, Number(c.dataset.rank)]) : null;
  }, first.length);
  check(two.length === 2 * first.length && two.every(([id, rank], i) => rank === i && (i === 0 || id > two[i - 1][0])),
    `after More the catalog shows ${two.length} titles (${two.slice(first.length - 1, first.length + 2)}): want two pages in id order, ranked 0 on`);
  await page.screenshot({ path: join(out, 'catalog-large.png') });
  console.log(`ok: the catalog shows ${first.length} of ${want.ready} ready titles, and ${two.length} after More`);

  // Continue watching finds the last title, far past the pages shown,
  // by id.
  await untilReloaded(page, `${base}/#/`, `continue watching lists ${want.last}`, (id) => document.querySelector(`#continue .card[data-title="${id}"]`), want.last);
  console.log(`ok: continue watching lists ${want.last}`);

  // Search: the hits' cards carry the titles' names, looked up by id.
  const hits = await untilReloaded(page, `${base}/#/search?q=${encodeURIComponent(want.word)}`, `search finds "${want.word}"`, (sel) => {
    const cards = [...document.querySelectorAll(`${sel} .card`)];
    return cards.length ? cards.map((c) => ({ id: c.dataset.title, name: c.querySelector('.name').textContent })) : null;
  }, '#results', 120000);
  check(hits.length <= 24 && hits.every((c) => c.name.includes(want.word) && c.name !== c.id),
    `search "${want.word}" shows ${JSON.stringify(hits.slice(0, 5))}…: want at most 24 cards named with the word`);
  await page.screenshot({ path: join(out, 'search-large.png') });
  console.log(`ok: search "${want.word}" shows ${hits.length} titles by name (${hits.slice(0, 3).map((c) => c.name).join(', ')}, …)`);

  // A title page: its name, its download from the title's downloads, and
  // titles like it (before the recommender's first model: of its genre).
  const titleID = 'cat-02500';
  await page.goto(`${base}/#/title/${titleID}`);
  const about = await until(page, `the page of ${titleID}`, () => {
    const h1 = document.querySelector('.about h1');
    return h1 && { name: h1.textContent, downloads: [...document.querySelectorAll('.downloads a')].map((a) => a.getAttribute('href')) };
  });
  check(/^\w+ \w+ 2500$/.test(about.name) && about.downloads.length === 1 && about.downloads[0] === `/v1/titles/${titleID}/files/download/720p.mp4`,
    `the page of ${titleID} shows ${JSON.stringify(about)}: want its name and its 720p download`);
  const similar = await until(page, `titles like ${titleID}`, () => {
    const cards = [...document.querySelectorAll('#similar .card')].map((c) => c.dataset.title);
    return cards.length ? cards : null;
  });
  check(!similar.includes(titleID) && similar.length <= 8, `more like ${titleID}: ${similar}`);
  await page.screenshot({ path: join(out, 'title-large.png') });
  console.log(`ok: the page of ${titleID} shows "${about.name}", its download, and ${similar.length} titles like it`);

  // The account page.
  await page.goto(`${base}/#/account`);
  await until(page, 'the account page', (e) => document.querySelector('#account-email')?.textContent === e, email);
  console.log('ok: the account page shows the account');

  // The operator page with an ingest key offers the titles waiting for
  // their video, every one of them: more than one page of the listing.
  await page.goto(`${base}/#/ops`);
  await page.waitForSelector('#key-form input[name=key]');
  await useKey(page, ingestKey);
  const waiting = await until(page, 'the upload form offers the titles waiting', (n) => {
    const opts = [...document.querySelectorAll('#titles-new option')].map((o) => o.value);
    return opts.length >= n ? opts : null;
  }, want.new);
  check(waiting.length === want.new && waiting.every((id) => id.startsWith('new-')), `the upload form offers ${waiting.length} titles (${waiting.slice(0, 3)}…): want the ${want.new} waiting`);
  console.log(`ok: the upload form of an ingest key offers the ${waiting.length} titles waiting for their video`);

  // The network log: nothing over 1 MB, the listing always paged.
  const entries = [...log.values()].filter((e) => e.url.startsWith(base));
  const big = entries.filter((e) => size(e) > MB);
  check(big.length === 0, `responses over 1 MB: ${big.map((e) => `${e.url} ${size(e)} B`).join('; ')}`);
  const listing = entries.filter((e) => new URL(e.url).pathname === '/v1/titles');
  const unpaged = listing.filter((e) => { const q = new URL(e.url).searchParams; return !q.get('limit') && !q.get('ids'); });
  check(listing.length > 0 && unpaged.length === 0, `listing calls without limit or ids: ${unpaged.map((e) => e.url).join(' ')}`);
  const posters = entries.filter((e) => /\/v1\/titles\/cat-\d+\/files\/poster\.jpg$/.test(e.url));
  check(posters.length > 0, 'no poster asked for: want the cards to load poster_url');
  // What was refused (signed out, a recommender without a model, a
  // viewer over its rate): counted by status and route, for the log.
  const refused = {};
  for (const e of entries.filter((x) => x.status >= 400)) {
    const key = `${e.status} ${new URL(e.url).pathname.replace(/\/v1\/titles\/[^/]+\//, '/v1/titles/{id}/')}`;
    refused[key] = (refused[key] || 0) + 1;
  }
  if (Object.keys(refused).length) console.log(`refused: ${Object.entries(refused).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  const largest = [...entries].sort((a, b) => size(b) - size(a)).slice(0, 3);
  console.log(`ok: ${entries.length} responses (${listing.length} of GET /v1/titles, ${posters.length} posters), none over 1 MB; largest ${largest.map((e) => `${new URL(e.url).pathname}${new URL(e.url).search} ${size(e)} B`).join(', ')}`);
  check(errors.length === 0, `the pages threw: ${errors.join('; ')}`);
} catch (err) {
  failed = true;
  console.log(`FAIL: ${err.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
