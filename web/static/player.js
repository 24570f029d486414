// player.js: plays a title the way a Fillcast player should. It asks the
// control plane for playback (ranked, signed appliance URLs and a content
// steering URL), plays the first URL — HLS natively where the browser can,
// otherwise (and always for DASH) with shaka-player — and when the
// appliance in use fails (a fatal error, or the picture stalls while it
// should play), it asks the steering server which pathway to take now,
// skipping the ones that failed, and falls back to the next URL of the
// list when steering cannot answer; playback resumes where it stopped.
//
// Each player holds one of the account's screens: the stream lease the
// playback answer names. Progress events carry its id and keep it while
// the picture moves; a paused player renews it itself; destroy (and
// leave, when the page goes away) ends it, so that the screen is free at
// once. When the control plane refuses (a kids profile, the plan's
// screens all in use, a subscription that does not entitle the account
// to play), the player plays nothing and onRefused gets the API's own
// words.
//
// Each playback reports what happened to the event queue (events.js):
// the viewing events (play, progress, stop, complete), quality of
// experience every 30 s and at the end (qoe), and its errors. Under
// shaka-player every segment request also carries CMCD (CTA-5004) in its
// query string, for the appliances; the browser's own HLS cannot add it.

import * as api from './api.js';
import { events as queue } from './events.js';

const STALL_MS = 3000; // no progress while playing this long = failed
const HLS_TYPE = 'application/vnd.apple.mpegurl';
const LEASE_MS = 20000; // a paused player renews its screen this often; leases end after 60 s without news
const PROGRESS_MS = 10000; // a playing player reports its position this often
const QOE_MS = 30000; // and its quality of experience this often
const MAX_ERRORS = 20; // error events of one playback: a failing source can raise the same error over and over

// engineFor picks how to play protocol: "native" or "shaka" (null when
// this browser can play neither).
export function engineFor(video, protocol, prefer) {
  const shakaOK = typeof window.shaka !== 'undefined' && window.shaka.Player.isBrowserSupported();
  const nativeOK = protocol === 'hls' && video.canPlayType(HLS_TYPE) !== '';
  if (prefer === 'shaka' && shakaOK) return 'shaka';
  if (prefer === 'native' && nativeOK) return 'native';
  if (nativeOK) return 'native';
  return shakaOK ? 'shaka' : null;
}

// Player drives one <video> element.
export class Player {
  // onState is called with a copy of the state whenever it changes;
  // onRefused with the API's error when the control plane takes the
  // screen back while playing.
  // events is the queue the playback's events go to.
  constructor(video, { onState = () => {}, onRefused = () => {}, prefer = '', events = queue } = {}) {
    this.video = video;
    this.onState = onState;
    this.onRefused = onRefused;
    this.prefer = prefer;
    this.events = events;
    this.report = null; // what the current playback reports
    this.pathways = new Map(); // appliance host:port to its steering pathway (the appliance id)
    this.shaka = null;
    // tracks are the picture heights the player may choose from (known
    // under shaka-player; the browser's own HLS does not list them).
    this.state = { title: '', protocol: '', engine: '', url: '', host: '', rendition: '', tracks: [], audio: '', failovers: 0, failed: [], steering: '', stream: '', error: '' };
    this.stream = ''; // the id of the stream lease held
    this.pending = null; // the playback call under way
    this.renewing = false;
    this.audio = ''; // the audio language asked for, if any
    this.lastTime = 0;
    this.lastProgress = 0;
    this.switching = false;
    this.gaveUp = false; // every place to play from failed
    this.destroyed = false;
    this.timer = setInterval(() => this.watch(), 500);
    this.leaseTimer = setInterval(() => this.renew(), LEASE_MS);
    this.onError = () => {
      const err = video.error;
      // Under shaka-player the same failure comes as its error 3016,
      // which the shaka listener reports.
      if (this.state.engine === 'native' && !this.switching && err) {
        this.report?.error(`media-${err.code}`, err.message || 'the browser could not play the source', true);
      }
      this.fail(`media error ${err ? err.code : ''}`);
    };
    video.addEventListener('error', this.onError);
  }

  set(patch) {
    Object.assign(this.state, patch);
    this.onState({ ...this.state });
  }

  // load asks for playback of title over protocol and starts it. It
  // throws the API's error (an APIError) when playback is refused.
  async load(title, protocol) {
    // Startup time runs from here, the viewer's asking to play.
    this.report?.end();
    this.report = new Report(this, title);
    this.pending = api.playback(title, protocol, this.stream);
    const pb = await this.pending.finally(() => { this.pending = null; });
    if (this.destroyed) return; // destroy ends the stream
    this.playback = pb;
    this.stream = pb.stream_id || '';
    this.session = this.stream || newSession();
    this.learnPathways();
    const engine = engineFor(this.video, protocol, this.prefer);
    if (!engine) {
      throw new Error(protocol === 'dash'
        ? 'this browser cannot play DASH without the bundled player library (run make build)'
        : 'this browser plays HLS neither natively nor through the bundled player library');
    }
    this.gaveUp = false;
    this.set({ title, protocol, engine, stream: this.stream, failed: [], failovers: 0, error: '' });
    await this.open(pb.urls[0], 0);
  }

  // open starts url at position (seconds).
  async open(url, position) {
    this.switching = true;
    this.set({ url, host: new URL(url).host });
    try {
      if (this.state.engine === 'native') {
        this.video.src = url;
        if (position > 0) {
          await loaded(this.video, 8000);
          this.video.currentTime = position;
        }
      } else {
        if (!this.shaka) {
          this.shaka = new window.shaka.Player();
          await this.shaka.attach(this.video);
          const retry = { maxAttempts: 2, baseDelay: 250, backoffFactor: 2, fuzzFactor: 0.2, timeout: 4000, stallTimeout: 3000, connectionTimeout: 2000 };
          this.shaka.configure({
            streaming: { retryParameters: retry, bufferingGoal: 20 },
            manifest: { retryParameters: retry },
            preferredAudioLanguage: this.audio,
          });
          this.shaka.addEventListener('error', (e) => {
            const critical = e.detail && e.detail.severity === window.shaka.util.Error.Severity.CRITICAL;
            this.shakaError(e.detail, critical);
            if (critical) this.fail(`player error ${e.detail.code}`);
          });
          this.shaka.addEventListener('adaptation', () => this.rendition());
          this.shaka.addEventListener('variantchanged', () => this.rendition());
        }
        // CMCD: the session is the stream lease (one per playback), the
        // content the title; in the query string, as headers would make
        // every segment request a CORS preflight to the appliance.
        this.shaka.configure({ cmcd: { enabled: true, sessionId: this.session, contentId: this.state.title, useHeaders: false } });
        await this.shaka.load(url, position > 0 ? position : null);
      }
      if (this.destroyed) return;
      this.lastProgress = performance.now();
      await this.video.play().catch(() => {});
    } catch (err) {
      this.switching = false;
      // shaka-player rejects load with its error (not also an error
      // event): that stopped playback from this source.
      if (err && typeof err.code === 'number' && err.category) this.shakaError(err, true);
      return this.fail(err.message || String(err));
    }
    this.switching = false;
    this.rendition();
  }

  // shakaError reports a shaka-player error; fatal when it stopped
  // playback from the source in use. The ones that only say a load was
  // cut short (destroy, a newer load) are no errors of the playback.
  shakaError(err, fatal) {
    if (!err || (err.code >= 7000 && err.code <= 7003)) return;
    // Only short data: the URIs among it carry the playback token.
    const data = (err.data || []).filter((x) => typeof x === 'number' || (typeof x === 'string' && x.length <= 80 && !x.includes('://'))).slice(0, 3);
    this.report?.error(`shaka-${err.code}`, `Shaka Error ${err.code} (category ${err.category}, severity ${err.severity})${data.length ? `: ${data.join(', ')}` : ''}`, fatal);
  }

  // appliance names where the picture comes from, for the events: the
  // steering pathway of the host (the appliance's id) when known, else
  // the host.
  appliance() {
    return this.pathways.get(this.state.host) || this.state.host;
  }

  // learnPathways asks the steering server, once per playback, which
  // pathway each host is, so that events name appliances by id from the
  // start; the host stands in until then, or if it cannot answer.
  async learnPathways() {
    try {
      this.addPathways(await api.call(this.playback.steering_url));
    } catch { /* the host does */ }
  }

  addPathways(m) {
    for (const c of m['PATHWAY-CLONES'] || []) {
      const host = c['URI-REPLACEMENT'] && c['URI-REPLACEMENT'].HOST;
      if (host && c.ID) this.pathways.set(host, c.ID);
    }
  }

  // videoTrack is the video rendition playing (under shaka: the one
  // being fetched) as {height, kbps}; kbps is 0 where the browser's own
  // HLS plays, which does not say.
  videoTrack() {
    if (this.shaka) {
      const t = this.shaka.getVariantTracks().find((x) => x.active);
      return t && t.height ? { height: t.height, kbps: (t.videoBandwidth || t.bandwidth || 0) / 1000 } : null;
    }
    const height = this.video.videoHeight;
    return height ? { height, kbps: 0 } : null;
  }

  // rendition shows the picture size in use (and the bitrate and audio
  // language under shaka).
  rendition() {
    const v = this.video;
    let r = v.videoHeight ? `${v.videoHeight}p` : '';
    let audio = this.state.audio;
    let tracks = this.state.tracks;
    if (this.shaka) {
      const all = this.shaka.getVariantTracks();
      const t = all.find((x) => x.active);
      if (t && t.height) r = `${t.height}p · ${Math.round(t.bandwidth / 1000)} kbit/s`;
      if (t && t.language) audio = t.language;
      const heights = [...new Set(all.map((x) => x.height).filter(Boolean))].sort((a, b) => b - a);
      if (heights.join() !== tracks.join()) tracks = heights;
    }
    if (r !== this.state.rendition || audio !== this.state.audio || tracks !== this.state.tracks) this.set({ rendition: r, audio, tracks });
  }

  // selectAudio switches the audio language. shaka-player switches in
  // place; the browser's own HLS playback in Chromium has no audio track
  // API, so playback moves to shaka-player at the same position.
  async selectAudio(lang) {
    this.audio = lang;
    if (this.shaka) {
      this.shaka.selectAudioLanguage(lang);
      return;
    }
    const tracks = this.video.audioTracks;
    if (tracks && tracks.length) {
      for (const t of tracks) t.enabled = t.language === lang;
      this.set({ audio: lang });
      return;
    }
    if (engineFor(this.video, this.state.protocol, 'shaka') !== 'shaka') {
      throw new Error('this browser cannot switch audio tracks without the bundled player library');
    }
    const position = this.video.currentTime;
    this.switching = true;
    this.video.removeAttribute('src');
    this.video.load();
    this.set({ engine: 'shaka' });
    await this.open(this.state.url, position);
  }

  // watch notices stalls: a playing video whose time stops moving.
  watch() {
    if (this.destroyed || this.gaveUp) return;
    const v = this.video;
    this.rendition();
    if (v.currentTime !== this.lastTime || v.paused || v.ended || this.switching || !this.state.url) {
      this.lastTime = v.currentTime;
      this.lastProgress = performance.now();
      return;
    }
    if (performance.now() - this.lastProgress > STALL_MS) this.fail('no progress');
  }

  // fail moves to the next place to play from, once per failure.
  async fail(why) {
    if (this.switching || !this.playback || this.destroyed || this.gaveUp) return;
    this.switching = true;
    this.report?.interrupted();
    const failed = [...this.state.failed, this.state.host];
    const position = this.video.currentTime;
    this.set({ failed, failovers: this.state.failovers + 1, error: `${this.state.host}: ${why}` });
    let next = await this.steer(failed).catch(() => null);
    if (this.destroyed) return;
    if (!next) next = this.playback.urls.find((u) => !failed.includes(new URL(u).host));
    if (!next) {
      this.switching = false;
      this.gaveUp = true; // until the next load: retrying the same places again and again helps no one
      this.set({ error: `every place to play from failed (${failed.join(', ')})` });
      return;
    }
    await this.open(next, position);
  }

  // steer asks the content steering server for its pathway priority and
  // returns the current URL moved to the best pathway not yet failed.
  async steer(failed) {
    const m = await api.call(this.playback.steering_url);
    this.addPathways(m);
    const clones = new Map((m['PATHWAY-CLONES'] || []).map((c) => [c.ID, c['URI-REPLACEMENT'] && c['URI-REPLACEMENT'].HOST]));
    for (const id of m['PATHWAY-PRIORITY'] || []) {
      const host = clones.get(id);
      if (!host || failed.includes(host)) continue;
      const u = new URL(this.state.url);
      u.host = host;
      this.set({ steering: id });
      return u.toString();
    }
    return null;
  }

  // renew keeps the screen of a paused player (a playing one renews it
  // with its progress events). A lease that lapsed anyway (a sleeping
  // tab) is taken again; if the control plane refuses, because another
  // screen took its place or the subscription has lapsed meanwhile,
  // playback stops with its words.
  // While the event queue cannot get the progress events through (the
  // control plane's event stream is down), a playing player renews it
  // too.
  async renew() {
    const v = this.video;
    const playing = !v.paused && !v.ended;
    if (!this.stream || this.destroyed || this.renewing || (playing && !this.events.behind())) return;
    this.renewing = true;
    try {
      await api.keepAlive(this.stream);
    } catch (err) {
      if (err.status !== 404 || this.destroyed) return;
      try {
        const pb = await api.playback(this.state.title, this.state.protocol, this.stream);
        this.stream = pb.stream_id || this.stream;
        this.set({ stream: this.stream });
      } catch (again) {
        if (again.status === 429 || again.status === 403 || again.status === 402) this.refuse(again);
      }
    } finally {
      this.renewing = false;
    }
  }

  // refuse stops playing because the control plane said no.
  refuse(err) {
    if (this.destroyed) return;
    this.gaveUp = true;
    this.stream = '';
    this.video.pause();
    this.set({ stream: '', error: err.message });
    this.onRefused(err);
  }

  // leave ends the stream while the page is being left (pagehide): the
  // request goes out with keepalive, as the page may be gone before it
  // is answered.
  leave() {
    this.report?.end();
    if (!this.stream) return;
    api.endStream(this.stream, true).catch(() => {});
    this.stream = '';
  }

  // destroy stops playback, releases the element and ends the stream, so
  // that the screen is free before the next page asks for one.
  async destroy() {
    this.report?.end(); // before the element lets go of the position
    this.destroyed = true;
    clearInterval(this.timer);
    clearInterval(this.leaseTimer);
    this.video.removeEventListener('error', this.onError);
    this.playback = null;
    if (this.shaka) await this.shaka.destroy();
    this.video.removeAttribute('src');
    this.video.load();
    if (this.pending) {
      // A playback answer still on its way holds a screen too.
      const pb = await this.pending.catch(() => null);
      if (pb && pb.stream_id) this.stream = pb.stream_id;
    }
    const stream = this.stream;
    this.stream = '';
    if (stream) await api.endStream(stream).catch(() => {});
  }
}

// loaded waits for the element's metadata, failing on a media error or
// after ms, so that a dead source cannot hold a fail-over forever.
function loaded(el, ms) {
  return new Promise((resolve, reject) => {
    const done = (fn, arg) => {
      clearTimeout(timer);
      el.removeEventListener('loadedmetadata', ok);
      el.removeEventListener('error', bad);
      fn(arg);
    };
    const ok = () => done(resolve);
    const bad = () => done(reject, new Error('the source failed to load'));
    const timer = setTimeout(() => done(reject, new Error('no metadata in time')), ms);
    el.addEventListener('loadedmetadata', ok);
    el.addEventListener('error', bad);
  });
}

// newSession is a CMCD session id for a playback without a stream lease.
const newSession = () => (typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : String(Math.random()).slice(2));

// round keeps digits decimals: the events need no more.
const round = (x, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

// text makes s fit a free-text field of an event: printable, at most 256
// characters.
const text = (s) => String(s).replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 256);

// Report is what one playback (a load) sends to the event queue.
//
// Viewing: play at the first picture, progress every PROGRESS_MS while
// playing (these keep the stream lease), stop on pause and at the end,
// complete at the title's end. Each carries the stream lease's id.
//
// qoe: every QOE_MS and at the end, over the interval since the previous
// one: startup_ms (from load to the first picture, on the first one
// only), played_s (the media time played, seeks left out), rebuffers and
// rebuffer_ms (the picture waiting for data after startup, fail-overs
// included; waiting after a seek is not counted), bitrate_kbps (the mean
// over the seconds played, of the rendition fetched under shaka-player
// or, in the browser's own HLS, of the bytes the browser decoded, where
// it says), switches (of the video rendition) and dropped_frames.
//
// error: the errors the player reports (Player.shakaError, the media
// error), at most MAX_ERRORS.
class Report {
  constructor(player, title) {
    this.player = player;
    this.video = player.video;
    this.title = title;
    this.requested = performance.now();
    this.started = false; // the first picture was shown
    this.startupMs = -1; // until it is sent
    this.ended = false;
    this.errors = 0;
    this.lastProgress = 0;
    this.lastQoE = performance.now();
    this.lastSample = performance.now();
    this.lastTime = 0;
    this.stallSince = 0; // the picture waits for data since then (performance.now())
    this.height = 0; // of the video rendition at the last sample
    this.stopSent = false; // stop was sent since the last picture
    this.held = null; // events held back by end, to go out together
    this.framesSeen = 0; // the element's dropped frame count at the last sample
    this.bytesSeen = this.decodedBytes();
    this.reset();
    const v = this.video;
    this.listeners = {
      playing: () => this.playing(),
      waiting: () => {
        if (this.started && !v.seeking && !this.player.switching) this.stalled();
      },
      // The viewer's pause or seek ends a wait: what follows is not the
      // network's doing. The player's own (a fail-over) does not.
      pause: () => {
        if (this.player.switching) return;
        this.unstalled();
        if (this.started && !v.ended) this.stop();
      },
      seeking: () => {
        if (!this.player.switching) this.unstalled();
      },
      ended: () => {
        this.unstalled();
        this.viewing('complete');
      },
    };
    for (const [name, fn] of Object.entries(this.listeners)) v.addEventListener(name, fn);
    this.timer = setInterval(() => this.tick(), 1000);
  }

  // reset starts a qoe interval.
  reset() {
    this.played = 0;
    this.bits = 0; // estimated bits of the seconds played
    this.bitsS = 0; // the seconds played whose bitrate is known
    this.rebuffers = 0;
    this.rebufferMs = 0;
    this.switches = 0;
    this.dropped = 0;
  }

  push(ev) {
    const e = { title: this.title, ...ev };
    if (this.held) this.held.push(e);
    else this.player.events.push(e);
  }

  stop() {
    if (this.stopSent) return;
    this.stopSent = true;
    this.viewing('stop');
  }

  // viewing sends a viewing event of type at the current position. The
  // control plane needs the title's length for all but play.
  viewing(type) {
    const v = this.video;
    const duration = Number.isFinite(v.duration) && v.duration > 0 ? v.duration : 0;
    if (!duration && type !== 'play') return;
    const position = Math.max(0, v.currentTime || 0);
    this.push({
      type, position_s: round(duration ? Math.min(position, duration) : position), duration_s: round(duration),
      stream_id: this.player.stream || undefined,
    });
  }

  playing() {
    this.unstalled();
    this.stopSent = false;
    if (this.started) return;
    this.started = true;
    this.startupMs = Math.min(600000, Math.round(performance.now() - this.requested));
    this.lastTime = this.video.currentTime;
    this.lastProgress = performance.now();
    this.viewing('play');
  }

  stalled() {
    if (this.stallSince) return;
    this.stallSince = performance.now();
    this.rebuffers++;
  }

  unstalled() {
    if (!this.stallSince) return;
    this.rebufferMs += performance.now() - this.stallSince;
    this.stallSince = 0;
  }

  // interrupted is called as the player leaves a failed source: the
  // picture waits until the next one plays, and the interval so far was
  // the failed appliance's.
  interrupted() {
    if (this.started && !this.video.paused) this.stalled();
    this.qoe();
  }

  decodedBytes() {
    const v = this.video;
    return typeof v.webkitVideoDecodedByteCount === 'number' ? v.webkitVideoDecodedByteCount + (v.webkitAudioDecodedByteCount || 0) : -1;
  }

  // tick samples the playback every second and sends progress and qoe
  // when they are due.
  tick() {
    const v = this.video;
    const now = performance.now();
    const dt = (now - this.lastSample) / 1000;
    this.lastSample = now;
    const moved = v.currentTime - this.lastTime;
    this.lastTime = v.currentTime;
    const bytes = this.decodedBytes();
    const newBytes = bytes >= this.bytesSeen ? bytes - this.bytesSeen : bytes; // the count starts again with a new source
    this.bytesSeen = bytes;
    const track = this.player.videoTrack();
    // A jump larger than the time passed is a seek, not playing.
    if (this.started && !v.paused && moved > 0 && moved <= dt * (v.playbackRate || 1) + 0.5) {
      this.played += moved;
      if (track && track.kbps) {
        this.bits += track.kbps * 1000 * moved;
        this.bitsS += moved;
      } else if (bytes >= 0 && newBytes > 0) {
        this.bits += newBytes * 8;
        this.bitsS += moved;
      }
    }
    if (track) {
      if (this.height && track.height !== this.height) this.switches++;
      this.height = track.height;
    }
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    if (q) {
      const frames = q.droppedVideoFrames;
      this.dropped += frames >= this.framesSeen ? frames - this.framesSeen : frames;
      this.framesSeen = frames;
    }
    if (this.started && !v.paused && !v.ended && now - this.lastProgress >= PROGRESS_MS) {
      this.lastProgress = now;
      this.viewing('progress');
    }
    if (now - this.lastQoE >= QOE_MS) this.qoe();
  }

  // qoe sends the interval since the previous qoe event, when the
  // playback has started and the interval has something to say.
  qoe() {
    this.lastQoE = performance.now();
    if (!this.started) return; // never played: its errors say why
    if (this.stallSince) {
      // A wait still under way counts up to now here, and on in the next
      // interval.
      const now = performance.now();
      this.rebufferMs += now - this.stallSince;
      this.stallSince = now;
    }
    const first = this.startupMs >= 0;
    if (!first && !this.played && !this.rebuffers && this.rebufferMs < 1 && !this.switches && !this.dropped) return;
    const ev = {
      type: 'qoe', appliance: text(this.player.appliance()), played_s: round(this.played), rebuffers: this.rebuffers,
      rebuffer_ms: Math.round(this.rebufferMs), switches: this.switches, dropped_frames: this.dropped,
    };
    if (first) ev.startup_ms = this.startupMs;
    if (this.bitsS > 0) ev.bitrate_kbps = round(this.bits / 1000 / this.bitsS, 1);
    this.startupMs = -1;
    this.reset();
    this.push(ev);
  }

  // error sends an error event of the playback.
  error(code, message, fatal) {
    if (this.ended || this.errors >= MAX_ERRORS) return;
    this.errors++;
    const appliance = this.player.appliance();
    this.push({ type: 'error', code: text(code), message: text(message), fatal: Boolean(fatal), appliance: appliance ? text(appliance) : undefined });
  }

  // end sends the last events, once: stop (unless the title ended) and
  // the last qoe interval, together so that a page being left sends one
  // request.
  end() {
    if (this.ended) return;
    clearInterval(this.timer);
    for (const [name, fn] of Object.entries(this.listeners)) this.video.removeEventListener(name, fn);
    this.held = [];
    this.tick();
    this.ended = true;
    if (this.started && !this.video.ended) this.stop();
    this.unstalled();
    this.qoe();
    const held = this.held;
    this.held = null;
    if (held.length) this.player.events.push(...held);
  }
}
