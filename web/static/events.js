// events.js: the queue of events the pages and the player send to the
// control plane (POST /v1/events): viewing (play, progress, stop,
// complete), UI (impression, click, search), player errors and quality
// of experience (qoe).
//
// The control plane stores an event once per id, so the queue gives
// each event an id when it is pushed, and when a post fails (no
// network, a 5xx, 503 while the event stream is unavailable) it sends
// the very same batch again after a backoff rather than building a new
// one: a batch that arrived but whose answer was lost is not counted
// twice. Events go out every few seconds, or as soon as BATCH_EVENTS
// wait; when the page is hidden or left they go out at once, with
// fetch's keepalive, which lets a request outlive the page but allows
// only 64 KiB of bodies in flight: hence the small batches. While the
// control plane cannot take them, at most MAX_QUEUED events wait, the
// oldest dropped first.
//
// Each event is filed under the profile picked when it was pushed (the
// X-Fillcast-Profile header), so a batch holds one profile's events.

import { postEvents, profileChoice } from './api.js';

const FLUSH_MS = 5000;
const BATCH_EVENTS = 50; // this many waiting go out without waiting for the next flush
const MAX_BATCH_EVENTS = 100;
const MAX_BATCH_BYTES = 28 * 1024; // two batches fit in keepalive's 64 KiB
const KEEPALIVE_BYTES = 60 * 1024; // keepalive bodies in flight, leaving room for the player's endStream
const MAX_QUEUED = 1000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60000;
const POST_TIMEOUT_MS = 15000; // a post that hangs must not hold the queue forever

const encoder = new TextEncoder();
const byteLength = (s) => encoder.encode(s).length;

// newID returns a random event id. crypto.randomUUID needs a secure
// context (HTTPS, or loopback); a control plane served over plain HTTP
// elsewhere still has getRandomValues.
export function newID() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// retryAfter is the wait an answer asks for, in ms (0 when none).
function retryAfter(res) {
  const v = res.headers.get('Retry-After');
  if (!v) return 0;
  const ms = /^\d+$/.test(v.trim()) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 5 * RETRY_MAX_MS) : 0;
}

// Batch is a batch sealed for sending: its events and body never change
// again, so that every send of it carries the same ids.
class Batch {
  constructor(profile, events) {
    this.profile = profile;
    this.events = events;
    this.body = JSON.stringify(events);
    this.bytes = byteLength(this.body);
    this.keptAlive = false; // a keepalive post of it is under way
  }
}

// EventQueue batches events and posts them. post, profile and log are
// what it works with (the control plane's API and the console, unless a
// test hands in others).
export class EventQueue {
  constructor({ post = postEvents, profile = profileChoice.get, log = console } = {}) {
    this.post = post;
    this.profile = profile;
    this.log = log;
    this.queued = []; // {profile, event}, oldest first, not yet in a batch
    this.batches = []; // sealed and not yet taken, oldest first
    this.sending = false; // flush is posting
    this.retryAt = 0; // no flush before this (Date.now()) after a failure
    this.retryTimer = null;
    this.backoff = 0;
    this.failing = false; // the last post failed, and is to be sent again
    this.leaving = false; // between pagehide and pageshow: every event goes out at once
    this.keepaliveBytes = 0;
    this.dropped = 0; // events dropped since a batch was last taken
    this.started = false;
  }

  // start flushes every FLUSH_MS and when the page is hidden or left.
  // The queue lives as long as the page: there is nothing to stop.
  start(win = window) {
    if (this.started) return;
    this.started = true;
    setInterval(() => this.flush(), FLUSH_MS);
    // A hidden page may be discarded without another word (mobile
    // browsers do): what waits goes out now. pagehide is the last word
    // of a page being left, and what other pagehide listeners push
    // after it (the player's stop) goes out as it is pushed.
    win.document.addEventListener('visibilitychange', () => {
      if (win.document.visibilityState === 'hidden') this.sendAll();
      else this.flush();
    });
    win.addEventListener('pagehide', () => {
      this.leaving = true;
      this.sendAll();
    });
    win.addEventListener('pageshow', () => {
      this.leaving = false;
      this.flush();
    });
  }

  // push queues events (objects with a type and the type's fields),
  // giving each an id and, unless it has one, the time now.
  push(...events) {
    const profile = this.profile();
    for (const ev of events) {
      this.queued.push({ profile, event: { ...ev, id: newID(), ts: ev.ts || new Date().toISOString() } });
    }
    this.trim();
    if (this.leaving) this.sendAll();
    else if (this.queued.length >= BATCH_EVENTS) this.flush();
  }

  // behind says whether events are waiting to be sent again after a
  // failure: the player then keeps its stream lease itself, as its
  // progress events, which keep it otherwise, are not getting through.
  behind() {
    return this.failing && this.batches.length > 0;
  }

  // trim keeps at most MAX_QUEUED events waiting, dropping the oldest: a
  // sealed batch is dropped whole, never changed. It says so once until
  // the control plane takes events again, which then says how many.
  trim() {
    let n = this.queued.length + this.batches.reduce((sum, b) => sum + b.events.length, 0);
    while (n > MAX_QUEUED) {
      if (!this.dropped) this.log.warn(`events: more than ${MAX_QUEUED} events are waiting for the control plane: dropping the oldest`);
      const gone = this.batches.length ? this.batches.shift().events.length : (this.queued.shift(), 1);
      n -= gone;
      this.dropped += gone;
    }
  }

  // seal moves the oldest queued events of one profile into a new batch,
  // bounded in events and bytes; null when nothing is queued.
  seal() {
    if (!this.queued.length) return null;
    const { profile } = this.queued[0];
    const events = [];
    let bytes = 2;
    while (this.queued.length && events.length < MAX_BATCH_EVENTS && this.queued[0].profile === profile) {
      const size = byteLength(JSON.stringify(this.queued[0].event)) + 1;
      if (events.length && bytes + size > MAX_BATCH_BYTES) break;
      bytes += size;
      events.push(this.queued.shift().event);
    }
    const b = new Batch(profile, events);
    this.batches.push(b);
    return b;
  }

  // flush posts the batches one after the other, oldest first, until
  // none is left or one fails (it is then sent again after a backoff).
  async flush() {
    if (this.sending || Date.now() < this.retryAt) return;
    this.sending = true;
    try {
      for (;;) {
        const b = this.batches[0] || this.seal();
        if (!b || !(await this.send(b, false))) return;
      }
    } finally {
      this.sending = false;
    }
  }

  // sendAll posts everything waiting at once with keepalive, as far as
  // the browser's budget for keepalive bodies allows: the page may be
  // gone before the answers come. A batch being posted already without
  // keepalive is posted again, as that request may die with the page;
  // the control plane keeps one copy.
  sendAll() {
    while (this.seal());
    for (const b of this.batches) {
      if (b.keptAlive) continue;
      if (this.keepaliveBytes + b.bytes > KEEPALIVE_BYTES) break;
      b.keptAlive = true;
      this.keepaliveBytes += b.bytes;
      this.send(b, true).finally(() => {
        b.keptAlive = false;
        this.keepaliveBytes -= b.bytes;
      });
    }
  }

  // send posts b once. It answers true when b is settled (taken, or
  // refused for good) and false when it is to be sent again later.
  async send(b, keepalive) {
    let res;
    try {
      const signal = !keepalive && AbortSignal.timeout ? AbortSignal.timeout(POST_TIMEOUT_MS) : undefined;
      res = await this.post(b.body, { profile: b.profile, keepalive, signal });
    } catch (err) {
      return this.failed(b, `cannot reach the control plane (${err.message})`, 0);
    }
    this.failing = false;
    if (res.ok) {
      this.settle(b);
      this.backoff = 0;
      this.retryAt = 0;
      if (this.dropped) this.log.warn(`events: dropped ${this.dropped} events while the control plane could not take them`);
      this.dropped = 0;
      const answer = await res.json().catch(() => null);
      for (const r of (answer && answer.rejected) || []) {
        // A page or player bug (or a title deleted meanwhile): sending
        // the event again would not help.
        this.log.error(`events: the control plane rejected event ${r.index}${r.field ? `, field ${r.field}` : ''}: ${r.reason}`, b.events[r.index]);
      }
      return true;
    }
    const text = await res.text().catch(() => '');
    if (res.status === 503 || res.status === 429 || res.status === 408 || res.status >= 500) {
      return this.failed(b, `${res.status} ${text.trim()}`, retryAfter(res));
    }
    // 400 (the batch malformed as a whole), 401 (signed out), 403, 413:
    // the same batch would get the same answer. Signing out with events
    // still waiting is no bug; the others are.
    this.settle(b);
    this.log[res.status === 401 ? 'warn' : 'error'](`events: the control plane refused a batch of ${b.events.length} events (${res.status} ${text.trim()}); dropped it`);
    return true;
  }

  // settle forgets b: taken, refused, or dropped.
  settle(b) {
    this.batches = this.batches.filter((x) => x !== b);
  }

  // failed schedules the next try of the batches after a send of b
  // failed; it answers whether b is settled anyway (another post of it
  // was taken meanwhile, or it was dropped).
  failed(b, why, afterMs) {
    if (!this.batches.includes(b)) return true;
    this.failing = true;
    this.backoff = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, 2 * this.backoff));
    // Jitter, so that the players a control-plane outage stopped do not
    // all come back in the same second.
    const delay = Math.max(afterMs, Math.round(this.backoff * (0.75 + 0.5 * Math.random())));
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.flush(), delay);
    this.log.warn(`events: ${why}; sending the same ${b.events.length} events again in ${(delay / 1000).toFixed(1)} s`);
    return false;
  }
}

// events is the page's queue: app.js starts it, the pages and the
// player push to it.
export const events = new EventQueue();
