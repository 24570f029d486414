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
// screens all in use), the player plays nothing and onRefused gets the
// API's own words.

import * as api from './api.js';

const STALL_MS = 3000; // no progress while playing this long = failed
const HLS_TYPE = 'application/vnd.apple.mpegurl';
const LEASE_MS = 20000; // a paused player renews its screen this often; leases end after 60 s without news

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
  constructor(video, { onState = () => {}, onRefused = () => {}, prefer = '' } = {}) {
    this.video = video;
    this.onState = onState;
    this.onRefused = onRefused;
    this.prefer = prefer;
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
    this.onError = () => this.fail(`media error ${video.error ? video.error.code : ''}`);
    video.addEventListener('error', this.onError);
  }

  set(patch) {
    Object.assign(this.state, patch);
    this.onState({ ...this.state });
  }

  // load asks for playback of title over protocol and starts it. It
  // throws the API's error (an APIError) when playback is refused.
  async load(title, protocol) {
    this.pending = api.playback(title, protocol, this.stream);
    const pb = await this.pending.finally(() => { this.pending = null; });
    if (this.destroyed) return; // destroy ends the stream
    this.playback = pb;
    this.stream = pb.stream_id || '';
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
            if (e.detail && e.detail.severity === window.shaka.util.Error.Severity.CRITICAL) this.fail(`player error ${e.detail.code}`);
          });
          this.shaka.addEventListener('adaptation', () => this.rendition());
          this.shaka.addEventListener('variantchanged', () => this.rendition());
        }
        await this.shaka.load(url, position > 0 ? position : null);
      }
      if (this.destroyed) return;
      this.lastProgress = performance.now();
      await this.video.play().catch(() => {});
    } catch (err) {
      this.switching = false;
      return this.fail(err.message || String(err));
    }
    this.switching = false;
    this.rendition();
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
  // screen took its place, playback stops with its words.
  async renew() {
    const v = this.video;
    if (!this.stream || this.destroyed || this.renewing || (!v.paused && !v.ended)) return;
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
        if (again.status === 429 || again.status === 403) this.refuse(again);
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
    if (!this.stream) return;
    api.endStream(this.stream, true).catch(() => {});
    this.stream = '';
  }

  // destroy stops playback, releases the element and ends the stream, so
  // that the screen is free before the next page asks for one.
  async destroy() {
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
