// browser.mjs: drives Debian's Chromium through the Fillcast pages with
// playwright-core. The Go test demo/browser_test.go starts the demo and
// runs this script; to kill an appliance the script prints
// "KILL <host:port>" and waits for a line "killed" on stdin, and
// "REVIVE <host:port>" (answered "revived") to bring it back.
//
// Environment: FILLCAST_URL (the control plane), FILLCAST_OUT (where the
// screenshots go), FILLCAST_ADMIN (the demo's admin key, entered in the
// operator page's key prompt), FILLCAST_UPLOAD (a video for its upload
// form; no upload without it), CHROMIUM (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { mkdirSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const base = process.env.FILLCAST_URL;
const admin = process.env.FILLCAST_ADMIN;
const out = process.env.FILLCAST_OUT || 'test-output';
mkdirSync(out, { recursive: true });
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

function check(ok, msg) {
  if (!ok) throw new Error(msg);
}

// until polls fn (run in the page) until it returns a truthy value.
async function until(page, what, fn, arg, timeout = 30000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 200 })).jsonValue();
  } catch (err) {
    const state = await page.evaluate(() => ({ player: window.fillcastPlayer, t: document.querySelector('video')?.currentTime, err: document.querySelector('.error')?.textContent }));
    throw new Error(`${what}: not within ${timeout / 1000}s (${JSON.stringify(state)})`);
  }
}

const video = () => {
  const v = document.querySelector('#video');
  return v && { t: v.currentTime, w: v.videoWidth, paused: v.paused, d: v.duration, buffered: v.buffered.length ? v.buffered.end(v.buffered.length - 1) : 0 };
};

// plays opens a title page and checks that the picture moves for secs.
async function plays(page, title, protocol, secs) {
  await page.goto(`${base}/#/title/${title}?protocol=${protocol}`);
  const start = await until(page, `${title} over ${protocol} starts`, () => {
    const v = document.querySelector('#video');
    return v && v.currentTime > 0.5 && v.videoWidth > 0 && window.fillcastPlayer && window.fillcastPlayer.host ? v.currentTime : 0;
  });
  await until(page, `${title} over ${protocol} plays ${secs}s`, ([s, n]) => {
    const v = document.querySelector('#video');
    return v.currentTime >= s + n && v.videoWidth > 0;
  }, [start, secs], (secs + 30) * 1000);
  const st = await page.evaluate(video);
  const player = await page.evaluate(() => window.fillcastPlayer);
  console.log(`ok: ${title} over ${protocol} (${player.engine}) played ${(st.t - start).toFixed(1)}s at ${st.w}px wide from ${player.host}, rendition ${player.rendition}`);
  await page.screenshot({ path: join(out, `title-${protocol}.png`) });
  return player;
}

// survivesKill plays, kills the appliance in use, moves the play head past
// what is buffered (so the player must fetch again) and checks that the
// picture goes on from another place.
async function survivesKill(page, title, protocol) {
  await page.goto(`${base}/#/title/${title}?protocol=${protocol}`);
  const first = await until(page, `${title} over ${protocol} starts`, () => {
    const v = document.querySelector('#video');
    return v && v.currentTime > 1 && window.fillcastPlayer && window.fillcastPlayer.host ? window.fillcastPlayer.host : '';
  });
  await harness('KILL', first, 'killed');
  const before = await page.evaluate(video);
  const target = Math.max(before.t, Math.min(before.buffered + 1, before.d - 12));
  await page.evaluate((t) => { document.querySelector('#video').currentTime = t; }, target);
  await until(page, `${protocol} playback goes on after ${first} died`, ([t, host]) => {
    const v = document.querySelector('#video');
    const p = window.fillcastPlayer;
    return v.currentTime >= t + 6 && p.failovers >= 1 && p.host !== host;
  }, [target, first], 60000);
  const player = await page.evaluate(() => window.fillcastPlayer);
  console.log(`ok: ${protocol} (${player.engine}) survived killing ${first}: now from ${player.host} after ${player.failovers} fail-over(s): ${player.error}`);
  await page.screenshot({ path: join(out, `failover-${protocol}.png`) });
  await harness('REVIVE', first, 'revived');
}

// useKey enters key in the operator page's key prompt.
async function useKey(page, key) {
  await page.fill('#key-form input[name=key]', key);
  await page.click('#key-form button[type=submit]');
}

// sections lists the operator page's sections and forms (run in the page).
const sections = () => [...document.querySelectorAll('#view section[id], #view form[id]')].map((e) => `#${e.getAttribute('id')}`); // not e.id: a form's input named id hides it

// harness asks the Go test to act on an appliance and waits for its word.
async function harness(verb, host, want) {
  console.log(`${verb} ${host}`);
  const reply = await lines.next();
  check(reply.value === want, `harness answered ${JSON.stringify(reply.value)} to ${verb} ${host}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    '--autoplay-policy=no-user-gesture-required'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const pageErrors = [];
  page.on('pageerror', (err) => { pageErrors.push(err.message); console.log(`page error: ${err.message}`); });
  page.on('console', (m) => { if (m.type() === 'error') console.log(`console: ${m.text()}`); });

  // The catalog lists the titles, with posters.
  await page.goto(`${base}/`);
  const names = await until(page, 'catalog lists titles', () => {
    const cards = [...document.querySelectorAll('#catalog .card .name')].map((e) => e.textContent);
    return cards.length >= 2 ? cards : null;
  });
  console.log(`ok: catalog lists ${names.join(', ')}`);
  await until(page, 'posters load', () => [...document.querySelectorAll('#catalog .card img')].some((i) => i.complete && i.naturalWidth > 0));
  await page.screenshot({ path: join(out, 'catalog.png') });

  // Search finds a title by a misspelt word, and suggests by prefix.
  await page.fill('#search', 'nigth');
  await page.press('#search', 'Enter');
  const hits = await until(page, 'search "nigth" finds Night Train', () => {
    const r = [...document.querySelectorAll('#results .card')].map((c) => c.dataset.title);
    return r.length ? r : null;
  });
  check(hits.slice(0, 3).includes('night-train'), `search "nigth" gave ${hits}, want night-train in the top 3`);
  const facets = await page.$$eval('.facets a', (as) => as.map((a) => a.textContent));
  check(facets.some((f) => f.startsWith('crime')), `genre facets of the results: ${facets}`);
  console.log(`ok: search "nigth" -> ${hits.join(', ')}; facets ${facets.join(', ')}`);
  await page.screenshot({ path: join(out, 'search.png') });
  await page.fill('#search', 'Nig');
  await until(page, 'suggestions for "Nig"', () => [...document.querySelectorAll('#suggest li')].some((li) => li.textContent.includes('Night')));
  console.log('ok: suggest "Nig" offers Night Train');

  // Playback over HLS and over DASH, ten seconds each.
  await plays(page, 'big-sky', 'hls', 10);
  await plays(page, 'big-sky', 'dash', 10);

  // A title with two audio languages switches to the second one and plays
  // on (from the browser's own HLS to shaka-player, which has the track
  // API).
  await page.goto(`${base}/#/title/night-train?protocol=hls`);
  await until(page, 'night-train starts', () => document.querySelector('#video')?.currentTime > 0.5);
  const langs = await page.$$eval('#audio a', (as) => as.map((a) => a.dataset.lang));
  check(langs.length === 2, `audio languages offered: ${langs}`);
  await page.click(`#audio a[data-lang="${langs[1]}"]`);
  const switched = await until(page, `audio switches to ${langs[1]}`, (lang) => {
    const p = window.fillcastPlayer;
    return p && p.audio && lang.startsWith(p.audio.slice(0, 2)) && document.querySelector('#video').currentTime > 0 ? document.querySelector('#video').currentTime : 0;
  }, langs[1]);
  await until(page, 'playback goes on after the audio switch', (t) => document.querySelector('#video').currentTime > t + 1.5, switched);
  console.log(`ok: audio switched from ${langs[0]} to ${langs[1]} (${await page.evaluate(() => window.fillcastPlayer.engine)}) and playback went on`);

  // The MP4 download is saved as a file, from an appliance.
  await page.goto(`${base}/#/title/big-sky?protocol=hls`);
  await page.waitForSelector('.downloads a');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), page.click('.downloads a')]);
  check(/^big-sky-\d+p\.mp4$/.test(download.suggestedFilename()), `download named ${download.suggestedFilename()}`);
  const saved = join(out, download.suggestedFilename());
  await download.saveAs(saved);
  check(statSync(saved).size > 10000, `download of ${statSync(saved).size} bytes`);
  console.log(`ok: download saved as ${download.suggestedFilename()} (${statSync(saved).size} bytes) from ${new URL(download.url()).host}`);

  // Killing the appliance in use does not stop playback.
  await survivesKill(page, 'big-sky', 'hls');
  await survivesKill(page, 'big-sky', 'dash');

  // The operator page asks for a key first and shows nothing else
  // without one; a wrong key is refused in words.
  await page.goto(`${base}/#/ops`);
  await page.waitForSelector('#key-form input[name=key]');
  check(!(await page.$('#fleet-section, #upload')), 'the operator page shows the fleet or the upload form without a key');
  await useKey(page, 'fck.knope.wrong');
  await until(page, 'a wrong key is refused', () => /refused the key/.test(document.querySelector('#key-form .error')?.textContent || ''));
  console.log('ok: the operator page asks for a key and refuses a wrong one');

  // With the demo's admin key it shows everything: the fleet and the
  // jobs, the upload form, the API keys and the appliances.
  await useKey(page, admin);
  await until(page, 'operator page lists the fleet and jobs', () => document.querySelectorAll('#fleet tbody tr').length >= 2 && document.querySelectorAll('#jobs tbody tr').length >= 1);
  const adminSees = await page.evaluate(sections);
  check(['#upload', '#apikey-form', '#appliance-form'].every((s) => adminSees.includes(s)), `the admin key sees ${adminSees}`);
  check(/bootstrap/.test(await page.textContent('#who')), `who: ${await page.textContent('#who')}`);
  const kept = await page.evaluate((k) => ({ session: sessionStorage.getItem('fillcast.key') === k, local: Object.values(localStorage).includes(k), cookie: document.cookie.includes(k) }), admin);
  check(kept.session && !kept.local && !kept.cookie, `the key is kept ${JSON.stringify(kept)}, want in sessionStorage only`);
  console.log(`ok: the admin key sees ${adminSees.join(' ')} and is kept for the tab only`);
  if (process.env.FILLCAST_UPLOAD) {
    await page.fill('#upload input[name=id]', 'uploaded');
    await page.fill('#upload input[name=name]', 'Uploaded From The Browser');
    await page.fill('#upload input[name=genres]', 'test');
    await page.setInputFiles('#upload input[name=file]', process.env.FILLCAST_UPLOAD);
    await page.click('#upload button[type=submit]');
    await until(page, 'upload accepted', () => /job .* is transcoding/.test(document.querySelector('#upload-status').textContent));
    await until(page, 'upload listed in the jobs', () => [...document.querySelectorAll('#jobs tbody tr')].some((tr) => tr.textContent.includes('uploaded')));
    await page.screenshot({ path: join(out, 'operator.png'), fullPage: true });
    await until(page, 'uploaded title transcoded', () => [...document.querySelectorAll('#jobs tbody tr')].some((tr) => tr.textContent.includes('uploaded') && tr.textContent.includes('done')), null, 180000);
    await page.goto(`${base}/#/`);
    await until(page, 'uploaded title in the catalog', () => document.querySelector('#catalog .card[data-title="uploaded"]'));
    console.log('ok: a title uploaded through the form was transcoded and is in the catalog');
  } else {
    await page.screenshot({ path: join(out, 'operator.png'), fullPage: true });
  }

  // The admin makes a read key, shown once. With it the page shows the
  // fleet but offers no upload and no keys; when the key is revoked, the
  // page forgets it and asks again.
  await page.goto(`${base}/#/ops`);
  await page.waitForSelector('#apikey-form');
  await page.fill('#apikey-form input[name=name]', 'browser-test');
  await page.selectOption('#apikey-form select[name=scope]', 'read');
  await page.click('#apikey-form button[type=submit]');
  const readKey = await until(page, 'the new key is shown', () => document.querySelector('#apikey-status input.secret')?.value);
  const readID = readKey.split('.')[1];
  await until(page, 'the new key is listed', (id) => document.querySelector(`#apikeys tr[data-key="${id}"]`), readID);
  await page.screenshot({ path: join(out, 'operator-keys.png'), fullPage: true });
  await page.click('#forget-key');
  await page.waitForSelector('#key-form');
  check(!(await page.evaluate(() => sessionStorage.getItem('fillcast.key'))), 'Forget key left the key in sessionStorage');
  await useKey(page, readKey);
  await until(page, 'the read key sees the fleet', () => document.querySelectorAll('#fleet tbody tr').length >= 2);
  const readSees = await page.evaluate(sections);
  check(['#upload', '#apikey-form', '#appliance-form', '#apikeys-section'].every((s) => !readSees.includes(s)) && readSees.includes('#appliances-section'),
    `the read key sees ${readSees}`);
  console.log(`ok: a read key made on the page sees ${readSees.join(' ')}`);
  const res = await fetch(`${base}/v1/apikeys/${readID}`, { method: 'DELETE', headers: { Authorization: `Bearer ${admin}` } });
  check(res.status === 204, `revoking ${readID}: ${res.status}`);
  await until(page, 'a revoked key is forgotten and asked for again', () => /refused the key/.test(document.querySelector('#key-form .error')?.textContent || '') && !sessionStorage.getItem('fillcast.key'));
  console.log('ok: once its key is revoked the page forgets it and asks for another');

  // Home again: the viewing just done shows under "continue watching".
  await page.goto(`${base}/#/`);
  await until(page, 'continue watching lists big-sky', () => document.querySelector('#continue .card[data-title="big-sky"]'), null, 15000);
  await page.screenshot({ path: join(out, 'home.png') });
  console.log('ok: continue watching lists big-sky');
  check(pageErrors.length === 0, `the pages threw: ${pageErrors.join('; ')}`);
} catch (err) {
  failed = true;
  console.log(`FAIL: ${err.message}`);
} finally {
  await browser.close();
  stdin.close();
}
process.exit(failed ? 1 : 0);
