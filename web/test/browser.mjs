// browser.mjs: drives Debian's Chromium through the Fillcast pages with
// playwright-core. The Go test demo/browser_test.go starts the demo and
// runs this script; to kill an appliance the script prints
// "KILL <host:port>" and waits for a line "killed" on stdin, and
// "REVIVE <host:port>" (answered "revived") to bring it back.
//
// Environment: FILLCAST_URL (the control plane), FILLCAST_OUT (where the
// screenshots go), FILLCAST_ADMIN (the demo's admin key, entered in the
// operator page's key prompt), FILLCAST_VIEWER ("email password" of the
// demo's premium viewer, entered in the sign-in form), FILLCAST_UPLOAD (a
// video for its upload form; no upload without it), CHROMIUM (default
// /usr/bin/chromium).
//
// Three browser contexts, each its own cookie jar: the demo's premium
// viewer plays, fails over and uses the operator page, after a viewer
// signed up on the standard plan, in its trial, has paid for premium on
// the account page (its first answer lost on the way and the submission
// sent again); then a viewer signs up on the basic plan and meets its
// limits (a kids profile, 480p, one screen) in two tabs, and, its card
// declined, is told that playback needs payment.

import { statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { base, out, check, launch, until, watch, signIn, pickProfile, useKey } from './lib.mjs';

const admin = process.env.FILLCAST_ADMIN;
const [viewerEmail, viewerPassword] = (process.env.FILLCAST_VIEWER || '').split(' ');
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

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

// asAdmin calls the control plane's API with the demo's admin key and
// answers the status and the decoded body.
async function asAdmin(method, path, body) {
  const headers = { Authorization: `Bearer ${admin}` };
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  let decoded = text;
  try {
    decoded = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: decoded };
}

// rulesShown checks the operator page's Rules section: a rule put through
// the API is listed with what it does (its match value, markup in it
// shown as text) and who put it, its change is in the audit list, and
// once deleted it is gone from the list and its deletion audited.
async function rulesShown(page) {
  const id = 'browser-test-route';
  const value = '<img src=x onerror=window.pwned=1>';
  const put = await asAdmin('PUT', `/v1/rules/${id}`, { kind: 'route', match: { header: 'X-Browser-Test', value }, target: { site: 'nowhere' } });
  check(put.status === 200 && put.body.updated_by, `PUT /v1/rules/${id}: ${put.status} ${JSON.stringify(put.body)}`);
  const row = await until(page, 'the rule put through the API is listed', (rid) => {
    const tr = document.querySelector(`#rules tr[data-rule="${rid}"]`);
    return tr && document.querySelector(`#rules-audit tr[data-rule="${rid}"][data-op="put"]`) ? tr.innerText : null;
  }, id);
  check(row.includes(value) && row.includes('route') && row.includes('site nowhere') && row.includes(put.body.updated_by),
    `the rule's row reads ${JSON.stringify(row)}: want its kind, match value ${value}, target and who put it (${put.body.updated_by})`);
  check(await page.evaluate(() => !document.querySelector('#rules-section img') && window.pwned === undefined), 'markup in a rule ran as HTML');
  const del = await asAdmin('DELETE', `/v1/rules/${id}`);
  check(del.status === 204, `DELETE /v1/rules/${id}: ${del.status}`);
  await until(page, 'the deleted rule leaves the list and its deletion is audited', (rid) =>
    !document.querySelector(`#rules tr[data-rule="${rid}"]`) && document.querySelector(`#rules-audit tr[data-rule="${rid}"][data-op="delete"]`), id);
  console.log(`ok: the Rules section lists a rule put through the API (${row.replace(/\s+/g, ' ')}) and audits its put and delete`);
}

// squeezeRow answers what the operator page shows of squeeze id (run in
// the page): its status, reason, share now, cancel button, the rows of
// its steps table, and whether its canary rule is listed; null before it
// is listed.
const squeezeRow = (id) => {
  const tr = document.querySelector(`#squeezes tr[data-squeeze="${id}"]`);
  if (!tr) return null;
  const steps = [...document.querySelectorAll(`#squeezes tr[data-steps="${id}"] table.steps tbody tr`)];
  return {
    status: tr.querySelector('.badge').textContent,
    reason: tr.querySelector('.reason')?.textContent || '',
    now: tr.querySelector('.now').textContent,
    cancel: Boolean(tr.querySelector('button.danger')),
    steps: steps.map((s) => ({ percent: Number(s.dataset.percent), crossed: s.classList.contains('crossed') })),
    rule: Boolean(document.querySelector(`#rules tr[data-rule="squeeze-${id}"]`)),
  };
};

// untilSqueeze polls what the page shows of squeeze id until ok holds.
async function untilSqueeze(page, what, id, ok, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const row = await page.evaluate(squeezeRow, id);
    if (row && ok(row)) return row;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000}s (the page shows ${JSON.stringify(row)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// startSqueeze fills the operator page's squeeze form for the first
// live appliance and answers the squeeze's id, or the error shown.
async function startSqueeze(page, fields) {
  const appliance = await until(page, 'the squeeze form offers the fleet', () =>
    [...document.querySelectorAll('#squeeze-form select[name=appliance] option')].find((o) => o.value && !/down/.test(o.textContent))?.value);
  await page.selectOption('#squeeze-form select[name=appliance]', appliance);
  for (const name of ['step_percent', 'step', 'max_p99_ms', 'max_error_ratio']) await page.fill(`#squeeze-form input[name=${name}]`, String(fields[name] ?? ''));
  await page.evaluate(() => document.querySelector('#squeeze-status').replaceChildren());
  await page.click('#squeeze-form button[type=submit]');
  const res = await until(page, 'the squeeze form answers', () => {
    const st = document.querySelector('#squeeze-status');
    const id = st.querySelector('.squeeze-id')?.textContent;
    const err = st.querySelector('.error')?.textContent;
    return id || err ? { id, err } : null;
  });
  return { appliance, ...res };
}

// squeezesShown checks the operator page's squeeze tests: the empty list
// first; a refused start shown in words; a squeeze started with the form
// running at its first share with its canary rule listed, then cancelled
// with its button; and a quick one (two steps of 50 %) whose steps the
// page lists as the API records them, the crossing step marked.
async function squeezesShown(page) {
  const empty = await until(page, 'the squeeze section says there is none', () =>
    document.querySelector('#squeeze-section h2')?.textContent === 'Squeeze tests' && document.querySelector('#squeezes')?.textContent);
  check(/No squeeze test yet/.test(empty), `with no squeeze the section says ${JSON.stringify(empty)}`);

  const refused = await startSqueeze(page, { step: '0.5s' });
  check(!refused.id && /shorter than/.test(refused.err || ''), `a squeeze with 0.5s steps: ${JSON.stringify(refused)}, want it refused in words`);

  const slow = await startSqueeze(page, { step: '1h' });
  check(slow.id, `starting a squeeze on ${slow.appliance}: ${JSON.stringify(slow)}`);
  const running = await untilSqueeze(page, 'the squeeze runs its first step', slow.id, (row) => row.status === 'running' && /\b5%/.test(row.now) && row.cancel && row.rule);
  console.log(`ok: a squeeze started with the form runs on ${slow.appliance} at ${running.now}, its canary rule listed`);
  page.once('dialog', (d) => d.accept());
  await page.click(`#squeezes tr[data-squeeze="${slow.id}"] button.danger`);
  const cancelled = await untilSqueeze(page, 'the squeeze is cancelled', slow.id, (row) => row.status === 'aborted' && !row.rule);
  check(/cancelled by/.test(cancelled.reason) && !cancelled.cancel, `the cancelled squeeze shows ${JSON.stringify(cancelled)}`);
  console.log(`ok: the Cancel button aborted it (${cancelled.reason}) and its canary rule is gone`);

  const quick = await startSqueeze(page, { step_percent: 50, step: '3s' });
  check(quick.id, `starting a quick squeeze on ${quick.appliance}: ${JSON.stringify(quick)}`);
  const done = await untilSqueeze(page, 'the quick squeeze finishes', quick.id, (row) => row.status !== 'running' && !row.rule, 90000);
  const rec = (await asAdmin('GET', `/v1/squeeze/${quick.id}`)).body;
  const want = (rec.steps || []).map((st) => ({ percent: st.percent, crossed: Boolean(st.crossed) }));
  check(done.status === rec.status && JSON.stringify(done.steps) === JSON.stringify(want),
    `the page shows ${JSON.stringify(done)}; the API answers status ${rec.status}, steps ${JSON.stringify(want)}`);
  check(rec.status !== 'stopped' || want.filter((st) => st.crossed).length === 1, `a stopped squeeze with steps ${JSON.stringify(want)}: want one crossed`);
  await page.screenshot({ path: join(out, 'operator-squeeze.png'), fullPage: true });
  console.log(`ok: a squeeze of 50% steps ${rec.status} (${rec.reason}) and the page lists its ${want.length} steps ${want.map((st) => `${st.percent}%${st.crossed ? ' crossed' : ''}`).join(', ')}`);
}

// The test provider's cards: one that pays, one that is declined.
const PAYS = '4242424242424242';
const DECLINED = '4000000000000002';

// subscription answers what the account page shows of the subscription
// (run in the page): its status, its facts by name, the notice, the
// status line's message or error, the card field, and the invoices;
// null while it is loading.
const subscription = () => {
  const sub = document.querySelector('#subscription');
  if (!sub) return null;
  const facts = Object.fromEntries([...sub.querySelectorAll('dd[data-fact]')].map((dd) => [dd.dataset.fact, dd.textContent]));
  return {
    status: sub.dataset.status,
    facts,
    notice: document.querySelector('#subscription-notice')?.textContent || '',
    done: document.querySelector('#billing-done')?.textContent || '',
    error: document.querySelector('#billing-status .error')?.textContent || '',
    card: document.querySelector('#subscribe-form input[name=card]')?.value ?? null,
    invoices: [...document.querySelectorAll('#invoices tbody tr')].map((tr) => ({ status: tr.dataset.status, text: tr.innerText })),
  };
};

// untilSubscription polls what the account page shows of the
// subscription until ok holds.
async function untilSubscription(page, what, ok, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const sub = await page.evaluate(subscription);
    if (sub && ok(sub)) return sub;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000}s (the page shows ${JSON.stringify(sub)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// payments records the subscription calls the page makes (method,
// Idempotency-Key, and, once answered, status and whether the answer was
// a replay) and everything it logs, to check that the card number is
// never logged; stop ends the recording.
function payments(page) {
  const calls = [];
  const logged = [];
  const onRequest = (req) => {
    if (!new URL(req.url()).pathname.startsWith('/v1/subscriptions') || req.method() === 'GET') return;
    calls.push({ method: req.method(), key: req.headers()['idempotency-key'] || '', request: req });
  };
  const onResponse = async (res) => {
    const call = calls.find((c) => c.request === res.request());
    if (call) Object.assign(call, { status: res.status(), replayed: (await res.allHeaders())['idempotent-replayed'] === 'true' });
  };
  const onConsole = (m) => logged.push(m.text());
  page.on('request', onRequest);
  page.on('response', onResponse);
  page.on('console', onConsole);
  return {
    calls,
    logged,
    stop() {
      page.off('request', onRequest);
      page.off('response', onResponse);
      page.off('console', onConsole);
    },
  };
}

// kept checks that the page kept card nowhere: not in its storage or
// cookies, its URL, or anything it logged.
async function keptNowhere(page, card, logged) {
  const where = await page.evaluate((c) => ({
    local: Object.values(localStorage).some((v) => v.includes(c)),
    session: Object.values(sessionStorage).some((v) => v.includes(c)),
    cookie: document.cookie.includes(c),
    url: location.href.includes(c),
  }), card);
  check(!where.local && !where.session && !where.cookie && !where.url && !logged.some((l) => l.includes(card)),
    `the card number is kept ${JSON.stringify(where)} or logged: want it nowhere`);
}

// subscribesOnPage has a viewer on the standard plan, in its trial,
// choose premium on the account page, among the plans and their prices
// on offer, and pay with the card that pays. The first answer is lost
// after the control plane made it (charged, recorded under the
// Idempotency-Key): the page says so and keeps the submission, and sent
// again it carries the same key and gets the first answer back, so that
// there is one subscription and one paid invoice, and the plan shown is
// premium. Then a downgrade waits for the period's end, and cancelling
// (confirmed) ends the subscription there instead.
async function subscribesOnPage(page) {
  const { calls, logged, stop } = payments(page);
  await page.goto(`${base}/#/account`);
  const trial = await untilSubscription(page, 'the account page shows the trial', (sub) => sub.status === 'trialing');
  check(trial.facts['trial-ends'] && /Standard/.test(trial.facts.plan) && trial.invoices.length === 0, `before subscribing the page shows ${JSON.stringify(trial)}`);
  const offered = await page.$$eval('#subscribe-form .plan', (ls) => ls.map((l) => [l.dataset.plan, l.querySelector('.price').textContent]));
  const premiumPrice = (offered.find(([id]) => id === 'premium') || [])[1] || '';
  check(offered.length === 3 && /€\s?19[.,]99 \/ month/.test(premiumPrice), `plans offered on the account page: ${JSON.stringify(offered)}`);
  const field = await page.$eval('#subscribe-form input[name=card]', (i) => [i.type, i.inputMode, i.autocomplete].join(' '));
  check(field === 'text numeric cc-number', `the card field is ${field}: want text numeric cc-number`);

  await page.click('#subscribe-form .plan[data-plan="premium"]');
  await page.fill('#subscribe-form input[name=card]', '4242 4242 4242 4242');
  await page.route('**/v1/subscriptions', async (route) => {
    await route.fetch(); // the control plane charges and answers; the page hears nothing
    await route.abort('connectionreset');
  }, { times: 1 });
  await page.click('#subscribe');
  const lost = await untilSubscription(page, 'the lost answer is reported', (sub) => sub.error);
  check(/press Subscribe again/.test(lost.error) && lost.card, `after the lost answer the page shows ${JSON.stringify(lost)}: want the card kept and a retry offered`);
  await page.click('#subscribe');
  const paid = await untilSubscription(page, 'the subscription is active', (sub) => sub.status === 'active' && sub.invoices.length);
  await keptNowhere(page, PAYS, logged);
  const posts = calls.filter((c) => c.method === 'POST');
  check(posts.length === 2 && posts[0].key && posts[0].key === posts[1].key && posts[1].status === 201 && posts[1].replayed,
    `the two submissions: ${JSON.stringify(posts.map(({ key, status, replayed }) => ({ key, status, replayed })))}: want the same Idempotency-Key, the second answered 201 as a replay`);
  check(!paid.card && /Premium/.test(paid.facts.plan) && paid.facts.renews && /4242/.test(paid.facts.card) && /Subscribed to Premium/.test(paid.done),
    `after subscribing the page shows ${JSON.stringify(paid)}`);
  const entitles = await page.evaluate(() => ['#plan-name', '#plan-height', '#streams h2'].map((sel) => document.querySelector(sel).textContent));
  check(entitles[0] === 'Premium' && /2160p/.test(entitles[1]) && /of 4\)/.test(entitles[2]), `after paying for premium the account page shows ${entitles}: want premium's entitlements`);
  check(paid.invoices.length === 1 && paid.invoices[0].status === 'paid' && /19[.,]99/.test(paid.invoices[0].text),
    `invoices after paying once: ${JSON.stringify(paid.invoices)}: want one, paid, of €19.99`);
  await page.screenshot({ path: join(out, 'billing.png'), fullPage: true });
  console.log(`ok: a viewer in its trial of standard subscribed to premium on the page (${premiumPrice}); the first answer lost, the retry used the same key and got it back: ${paid.facts.card}, renews ${paid.facts.renews}, invoice ${paid.invoices[0].text.replace(/\s+/g, ' ')}`);

  await page.click('#change-form .plan[data-plan="basic"]');
  await page.click('#change-plan');
  const down = await untilSubscription(page, 'the downgrade waits for the period\'s end', (sub) => sub.facts['changes-to']);
  check(down.status === 'active' && /Basic/.test(down.facts['changes-to']) && /Premium/.test(down.facts.plan), `after downgrading the page shows ${JSON.stringify(down)}`);
  page.once('dialog', (d) => d.accept());
  await page.click('#cancel-subscription');
  const canceled = await untilSubscription(page, 'the subscription is canceled at the period\'s end', (sub) => sub.facts.ends);
  check(canceled.status === 'active' && /canceled/.test(canceled.notice) && !canceled.facts['changes-to'] && !(await page.$('#cancel-subscription')),
    `after cancelling the page shows ${JSON.stringify(canceled)}`);
  const methods = calls.map((c) => c.method);
  check(methods.join() === 'POST,POST,PUT,DELETE' && new Set(calls.map((c) => c.key)).size === 3 && calls.every((c) => c.key),
    `the subscription calls: ${JSON.stringify(calls.map(({ method, key, status }) => ({ method, key, status })))}: want an Idempotency-Key of its own on each submission`);
  stop();
  console.log(`ok: the downgrade to basic waits for ${canceled.facts.ends}; cancelled, it ends then: "${canceled.notice}"`);
}

// payingViewer signs a viewer up on the standard plan through the API,
// signs it in on the page, and has it pay for premium
// (subscribesOnPage).
async function payingViewer(pageErrors) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watch(page, pageErrors);
  const email = `payer-${Date.now()}@test.fillcast`;
  const password = 'correct horse battery';
  const res = await fetch(`${base}/v1/accounts`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password, plan: 'standard' }) });
  check(res.status === 201, `signing ${email} up: ${res.status} ${await res.text()}`);
  await signIn(page, email, password);
  await pickProfile(page, false);
  await subscribesOnPage(page);
  await ctx.close();
}

// paymentRequired has a viewer in its trial mistype a card number (the
// control plane's 400 shown, the trial as it was) and then subscribe
// with a card that is declined: the page says so in the control plane's
// words, empties the card field, and the subscription is incomplete;
// then a title
// answers that payment is required where the player was, with a link to
// the account's plan and billing.
async function paymentRequired(page, title) {
  const { logged, stop } = payments(page);
  await page.goto(`${base}/#/account`);
  await untilSubscription(page, 'the account page shows the trial', (sub) => sub.status === 'trialing');
  await page.click('#subscribe-form .plan[data-plan="basic"]');
  await page.fill('#subscribe-form input[name=card]', '4242 4242 4242 4241');
  await page.click('#subscribe');
  const mistyped = await untilSubscription(page, 'the mistyped number is refused in words', (sub) => sub.error);
  check(/check digit/.test(mistyped.error) && mistyped.card === '' && mistyped.status === 'trialing', `after a mistyped number the page shows ${JSON.stringify(mistyped)}`);
  console.log(`ok: a mistyped card number: "${mistyped.error}"`);
  await page.fill('#subscribe-form input[name=card]', DECLINED);
  await page.click('#subscribe');
  const declined = await untilSubscription(page, 'the declined card is refused in words', (sub) => sub.error && sub.status === 'incomplete');
  check(/declined/.test(declined.error) && declined.card === '' && /another card/.test(declined.notice), `after the declined card the page shows ${JSON.stringify(declined)}`);
  await keptNowhere(page, DECLINED, logged);
  stop();
  await page.screenshot({ path: join(out, 'billing-declined.png'), fullPage: true });
  console.log(`ok: the declined card: "${declined.error}", the subscription ${declined.status}`);

  await page.goto(`${base}/#/title/${title}?protocol=hls`);
  const why = await until(page, `${title} says payment is required`, () => document.querySelector('#refusal[data-status="402"] p')?.textContent);
  check(/payment required/.test(why) && !(await page.$('#video')) && await page.isVisible('#refusal-billing'), `${title} without payment: ${why}, want no player and a link to billing`);
  await page.screenshot({ path: join(out, 'payment-required.png') });
  await page.click('#refusal-billing');
  await until(page, 'the link opens the account at plan and billing', () => location.hash === '#/account?section=billing' && document.querySelector('#subscribe-form input[name=card]'));
  console.log(`ok: ${title} says "${why}" instead of playing, and links to plan and billing`);
}

// sections lists the operator page's sections and forms (run in the page).
const sections = () => [...document.querySelectorAll('#view section[id], #view form[id]')].map((e) => `#${e.getAttribute('id')}`); // not e.id: a form's input named id hides it

// watching opens a title page and waits until it plays, under shaka-player
// (whose track list the page shows), and returns the player's state.
async function watching(page, title, protocol) {
  await page.goto(`${base}/#/title/${title}?protocol=${protocol}&engine=shaka`);
  return until(page, `${title} over ${protocol} plays`, (proto) => {
    const v = document.querySelector('#video');
    const p = window.fillcastPlayer;
    return v && v.currentTime > 0.5 && p && p.protocol === proto && p.engine === 'shaka' && p.tracks.length && p.stream ? p : null;
  }, protocol);
}

// harness asks the Go test to act on an appliance and waits for its word.
async function harness(verb, host, want) {
  console.log(`${verb} ${host}`);
  const reply = await lines.next();
  check(reply.value === want, `harness answered ${JSON.stringify(reply.value)} to ${verb} ${host}`);
}

// basicViewer signs a new viewer up on the basic plan (480p, one screen,
// no downloads) and checks, in the real browser, what the plan and a
// kids profile allow.
async function basicViewer(pageErrors) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const tab = await ctx.newPage();
  watch(tab, pageErrors);

  // Sign up: the plans on offer with their prices and entitlements.
  await tab.goto(`${base}/`);
  await tab.click('#signin a[href="#/signup"]');
  const plans = await until(tab, 'the sign-up form lists the plans', () => {
    const ps = [...document.querySelectorAll('#signup .plan')].map((l) => [l.dataset.plan, l.innerText.replace(/\s*\n\s*/g, ', ')]);
    return ps.length ? ps : null;
  });
  const basicText = (plans.find(([id]) => id === 'basic') || [])[1] || '';
  check(plans.length === 3 && /7[.,]99/.test(basicText) && /480p/.test(basicText) && /1 screen\b/.test(basicText) && /No downloads/.test(basicText),
    `plans offered: ${JSON.stringify(plans)}`);
  const email = `viewer-${Date.now()}@test.fillcast`;
  const password = 'correct horse battery';
  await tab.fill('#signup input[name=email]', email);
  await tab.fill('#signup input[name=password]', password);
  await tab.click('#signup .plan[data-plan="basic"]');
  await tab.screenshot({ path: join(out, 'signup.png') });
  await tab.click('#signup button[type=submit]');
  await tab.waitForSelector('#profiles .profile');
  console.log(`ok: signed up ${email} on basic (${basicText}) and signed in`);

  // A kids profile, picked: the 16+ title is neither listed nor played.
  await tab.fill('#profile-form input[name=name]', 'Kiddo');
  await tab.check('#profile-form input[name=kids]');
  await tab.click('#profile-form button[type=submit]');
  await until(tab, 'the kids profile is listed as such', () => /Kids/.test(document.querySelector('#profiles .profile[data-kids="yes"]')?.textContent || ''));
  await tab.screenshot({ path: join(out, 'profiles.png') });
  const kidsSees = await pickProfile(tab, true);
  check(!kidsSees.includes('night-train') && kidsSees.includes('tiny-world'), `the kids profile lists ${kidsSees}`);
  const kept = await tab.evaluate(() => ({ keys: Object.keys(localStorage), cookie: document.cookie }));
  check(kept.keys.join() === 'fillcast.profile' && !kept.cookie.includes('fillcast_session'), `the page keeps ${JSON.stringify(kept)}: want the profile id only`);
  await tab.goto(`${base}/#/title/night-train?protocol=hls`);
  const refused = await until(tab, 'night-train refused to the kids profile', () => document.querySelector('#refusal p')?.textContent);
  check(/kids profile/.test(refused) && !(await tab.$('#video')), `night-train on a kids profile: ${refused}`);
  await tab.screenshot({ path: join(out, 'kids-refused.png') });
  console.log(`ok: the kids profile lists ${kidsSees.join(', ')}, and opening night-train says "${refused}"`);

  // The grown-up profile plays on basic: no rendition above 480p, over
  // HLS and DASH, although the title has 720p.
  await tab.click('#current-profile');
  await tab.waitForSelector('#profiles .profile');
  const grownSees = await pickProfile(tab, false);
  check(grownSees.includes('night-train'), `the grown-up profile lists ${grownSees}`);
  const encoded = await tab.evaluate(async () => (await (await fetch('/v1/titles/tiny-world')).json()).renditions.filter((r) => r.kind === 'video').map((r) => r.height));
  check(Math.max(...encoded) > 480, `tiny-world is encoded at ${encoded}: want a rendition above 480p to keep from the basic plan`);
  for (const protocol of ['hls', 'dash']) {
    const p = await watching(tab, 'tiny-world', protocol);
    check(Math.max(...p.tracks) <= 480, `${protocol} on basic offers ${p.tracks.join('p, ')}p: want none above 480p (tiny-world has ${encoded.join('p, ')}p)`);
    check(/480p/.test(await tab.textContent('#plan-limit')), 'the player does not show the plan\'s limit');
    console.log(`ok: ${protocol} on basic offers ${p.tracks.join('p, ')}p of ${encoded.join('p, ')}p`);
  }
  await tab.screenshot({ path: join(out, 'basic-player.png') });

  // A second tab (the same cookie) is refused: one screen at once.
  const second = await ctx.newPage();
  watch(second, pageErrors);
  await second.goto(`${base}/#/title/tiny-world?protocol=dash`);
  const limit = await until(second, 'the second screen is refused', () => document.querySelector('#refusal p')?.textContent);
  check(/stream limit reached: your plan allows 1 screen at once/.test(limit), `the second tab says ${limit}`);
  await second.screenshot({ path: join(out, 'stream-limit.png') });
  const t0 = await tab.evaluate(() => document.querySelector('#video').currentTime);
  await until(tab, 'the first tab plays on', (t) => document.querySelector('#video').currentTime > t + 1, t0);
  console.log(`ok: a second tab says "${limit}" while the first plays on`);

  // The account page: the plan's entitlements, the profiles (the first
  // one not deletable), the stream playing.
  await second.goto(`${base}/#/account`);
  await second.waitForSelector('#plan-height');
  const acct = await second.evaluate(() => ({
    email: document.querySelector('#account-email').textContent,
    plan: document.querySelector('#plan-name').textContent,
    height: document.querySelector('#plan-height').textContent,
    screens: document.querySelector('#plan-screens').textContent,
    downloads: document.querySelector('#plan-downloads').textContent,
    profiles: [...document.querySelectorAll('#account-profiles tr')].map((tr) => [tr.textContent, Boolean(tr.querySelector('button.danger'))]),
    streams: [...document.querySelectorAll('#streams tr')].map((tr) => tr.textContent),
  }));
  check(acct.email === email && acct.plan === 'Basic' && /480p/.test(acct.height) && acct.screens === '1' && acct.downloads === 'No', `the account page shows ${JSON.stringify(acct)}`);
  check(acct.profiles.length === 2 && !acct.profiles[0][1] && acct.profiles[1][1] && /Kids/.test(acct.profiles[1][0]), `profiles on the account page: ${JSON.stringify(acct.profiles)}`);
  check(acct.streams.length === 1 && /Tiny World/.test(acct.streams[0]), `streams on the account page: ${JSON.stringify(acct.streams)}`);
  await second.screenshot({ path: join(out, 'account.png'), fullPage: true });
  console.log(`ok: the account page shows ${acct.plan}, ${acct.height}, ${acct.screens} screen, downloads ${acct.downloads}, 2 profiles, 1 stream`);

  // Closing the playing tab ends its stream at once, not 60 s later.
  await tab.close({ runBeforeUnload: true });
  await until(second, 'closing the tab ends its stream', async () => (await (await fetch('/v1/account')).json()).streams.length === 0, null, 10000);
  console.log('ok: closing the playing tab freed the screen');

  // What the grown-up profile watched shows under "continue watching".
  await second.goto(`${base}/#/`);
  await until(second, 'continue watching lists tiny-world', () => document.querySelector('#continue .card[data-title="tiny-world"]'), null, 15000);
  await second.screenshot({ path: join(out, 'home.png') });
  console.log('ok: continue watching lists tiny-world');

  // The kids profile is deleted; sign out; sign in again; sign out
  // everywhere.
  await second.goto(`${base}/#/account`);
  await second.click('#account-profiles tr:nth-child(2) button.danger');
  await until(second, 'the kids profile is deleted', () => document.querySelectorAll('#account-profiles tr').length === 1);
  await second.click('#sign-out');
  await second.waitForSelector('#signin');
  await second.goto(`${base}/#/`);
  await second.waitForSelector('#signin');
  check(!(await second.$('#catalog')), 'signed out, the catalog still shows');
  await signIn(second, email, password);
  check((await second.$$('#profiles .profile')).length === 1, 'the deleted profile is still offered');
  await pickProfile(second, false);

  // Its card declined, the viewer is told that playback needs payment.
  await paymentRequired(second, 'tiny-world');

  await second.goto(`${base}/#/account`);
  await second.click('#sign-out-everywhere');
  await second.waitForSelector('#signin');
  const status = await second.evaluate(async () => (await fetch('/v1/account')).status);
  check(status === 401, `after signing out everywhere, GET /v1/account answers ${status}`);
  console.log('ok: deleted the kids profile, signed out, signed in again, signed out everywhere');
  await ctx.close();
}

const browser = await launch();
let failed = false;
try {
  const premium = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await premium.newPage();
  const pageErrors = [];
  watch(page, pageErrors);

  // Signed out, the app shows sign-in (and the way to sign up), nothing
  // of the catalog; a wrong password is refused in words.
  await page.goto(`${base}/`);
  await page.waitForSelector('#signin');
  check(!(await page.$('#catalog')) && await page.isHidden('#search-form') && await page.$('#signin a[href="#/signup"]'), 'signed out, the app shows more than sign-in');
  await page.fill('#signin input[name=email]', viewerEmail);
  await page.fill('#signin input[name=password]', 'not-the-password');
  await page.click('#signin button[type=submit]');
  await until(page, 'a wrong password is refused', () => /Wrong email or password/.test(document.querySelector('#signin .error')?.textContent || ''));
  await page.screenshot({ path: join(out, 'signin.png') });
  console.log('ok: signed out, the app asks to sign in, and refuses a wrong password');

  // The demo's premium viewer signs in and picks a profile.
  await signIn(page, viewerEmail, viewerPassword);
  await pickProfile(page, false);
  console.log(`ok: signed in as ${viewerEmail}`);

  // The catalog lists the titles, with posters.
  await page.goto(`${base}/#/`);
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

  // Plan and billing: a new viewer pays on the account page.
  await payingViewer(pageErrors);

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
  check(['#upload', '#apikey-form', '#appliance-form', '#squeeze-section', '#squeeze-form', '#rules-section', '#billing-section'].every((s) => adminSees.includes(s)), `the admin key sees ${adminSees}`);
  check(/bootstrap/.test(await page.textContent('#who')), `who: ${await page.textContent('#who')}`);
  const kept = await page.evaluate((k) => ({ session: sessionStorage.getItem('fillcast.key') === k, local: Object.values(localStorage).includes(k), cookie: document.cookie.includes(k) }), admin);
  check(kept.session && !kept.local && !kept.cookie, `the key is kept ${JSON.stringify(kept)}, want in sessionStorage only`);
  console.log(`ok: the admin key sees ${adminSees.join(' ')} and is kept for the tab only`);
  const report = await until(page, 'the billing report counts the active subscription', () => {
    const n = (sel) => Number(document.querySelector(sel)?.textContent || 0);
    const active = n('#subscriptions-by-status tr[data-status="active"] td.num');
    return active >= 1 ? { active, premium: n('#active-by-plan tr[data-plan="premium"] td.num'), mrr: document.querySelector('#mrr').textContent,
      churn: document.querySelector('#churn').textContent, failed: document.querySelector('#failed-payments').textContent } : null;
  });
  check(report.premium >= 1 && /€\s?\d+[.,]\d\d/.test(report.mrr) && /%/.test(report.churn), `the billing report shows ${JSON.stringify(report)}`);
  console.log(`ok: the billing report shows ${report.active} active (${report.premium} on premium), MRR ${report.mrr}, churn ${report.churn}, ${report.failed} failed payments`);
  await rulesShown(page);
  await squeezesShown(page);
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
  check(['#upload', '#apikey-form', '#appliance-form', '#apikeys-section', '#squeeze-form'].every((s) => !readSees.includes(s))
    && ['#appliances-section', '#squeeze-section', '#rules-section', '#billing-section'].every((s) => readSees.includes(s)),
    `the read key sees ${readSees}`);
  console.log(`ok: a read key made on the page sees ${readSees.join(' ')}`);
  const res = await fetch(`${base}/v1/apikeys/${readID}`, { method: 'DELETE', headers: { Authorization: `Bearer ${admin}` } });
  check(res.status === 204, `revoking ${readID}: ${res.status}`);
  await until(page, 'a revoked key is forgotten and asked for again', () => /refused the key/.test(document.querySelector('#key-form .error')?.textContent || '') && !sessionStorage.getItem('fillcast.key'));
  console.log('ok: once its key is revoked the page forgets it and asks for another');

  await premium.close();

  await basicViewer(pageErrors);
  check(pageErrors.length === 0, `the pages threw: ${pageErrors.join('; ')}`);
} catch (err) {
  failed = true;
  console.log(`FAIL: ${err.message}`);
} finally {
  await browser.close();
  stdin.close();
}
process.exit(failed ? 1 : 0);
