// account.js: the pages of the account: sign-in, sign-up with the plans
// on offer, the profile picker and the account page (plan, profiles,
// streams playing now, signing out). app is what they need of the router
// (app.js): me() (GET /v1/account, null when signed out), loadMe, go,
// route, profileOf, signedIn and signedOut.

import * as api from './api.js';
import { h, show, errorBox, money, resolution } from './ui.js';

// accountPages returns the pages, drawn for app.
export function accountPages(app) {
  // field is a labelled form control.
  const field = (label, el, hint) => h('label', {}, h('span', {}, label), el, hint ? h('small', { class: 'muted' }, hint) : null);

  function signInPage() {
    const email = h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username', maxlength: 254 });
    const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
    const status = h('p', { class: 'status' });
    const form = h('form', { id: 'signin', class: 'account-form' },
      h('h1', {}, 'Sign in'),
      field('Email', email), field('Password', password),
      h('button', { type: 'submit' }, 'Sign in'), status,
      h('p', { class: 'muted' }, 'New to Fillcast? ', h('a', { href: '#/signup' }, 'Create an account'), '.'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      status.replaceChildren('Signing in…');
      try {
        await api.signIn(email.value.trim(), password.value);
        await app.signedIn();
      } catch (err) {
        status.replaceChildren(errorBox(err.status === 401 ? 'Wrong email or password.' : err.message));
      }
    });
    show(form);
    email.focus();
  }

  // planCard is one plan to pick: its price and what it entitles to.
  function planCard(p, checked) {
    return h('label', { class: 'plan', 'data-plan': p.id },
      h('input', { type: 'radio', name: 'plan', value: p.id, required: true, checked }),
      h('strong', {}, p.name || p.id),
      h('span', { class: 'price' }, money(p.price), p.period ? ` / ${p.period}` : ''),
      h('span', { class: 'muted' }, `Up to ${resolution(p.max_height)}`),
      h('span', { class: 'muted' }, `${p.max_streams} ${p.max_streams === 1 ? 'screen' : 'screens'} at once`),
      h('span', { class: 'muted' }, p.downloads ? 'Downloads' : 'No downloads'));
  }

  async function signUpPage(live) {
    const plans = (await api.plans()).sort((a, b) => a.price.amount - b.price.amount);
    if (!live()) return;
    if (!plans.length) {
      show(h('h1', {}, 'Create an account'), errorBox('No plans are on offer yet: an operator adds them with PUT /v1/plans/{id}.'));
      return;
    }
    const email = h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username', maxlength: 254 });
    const password = h('input', { name: 'password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' });
    const status = h('p', { class: 'status' });
    const form = h('form', { id: 'signup', class: 'account-form wide' },
      h('h1', {}, 'Create an account'),
      field('Email', email), field('Password', password, 'At least 10 characters.'),
      h('fieldset', { class: 'plans' }, h('legend', {}, 'Plan'), plans.map((p, i) => planCard(p, i === 0))),
      h('button', { type: 'submit' }, 'Create account'), status,
      h('p', { class: 'muted' }, 'Have an account? ', h('a', { href: '#/signin' }, 'Sign in'), '.'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const plan = form.querySelector('input[name=plan]:checked').value;
      status.replaceChildren('Creating the account…');
      try {
        await api.signUp(email.value.trim(), password.value, plan);
        await api.signIn(email.value.trim(), password.value);
        await app.signedIn();
      } catch (err) {
        status.replaceChildren(errorBox(err.message),
          err.status === 409 ? h('p', {}, h('a', { href: '#/signin' }, 'Sign in instead')) : '');
      }
    });
    show(form);
  }

  // profileForm adds a profile to the account; then done runs.
  function profileForm(done) {
    const name = h('input', { name: 'name', required: true, maxlength: 64, placeholder: 'Name' });
    const kidsBox = h('input', { name: 'kids', type: 'checkbox' });
    const status = h('p', { class: 'status' });
    const form = h('form', { id: 'profile-form', class: 'inline-form' },
      name, h('label', { class: 'check' }, kidsBox, ' Kids profile (titles rated all and 7+ only)'),
      h('button', { type: 'submit' }, 'Add profile'), status);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api.addProfile(name.value.trim(), kidsBox.checked);
        await done();
      } catch (err) {
        status.replaceChildren(errorBox(err.message));
      }
    });
    return form;
  }

  // profilesPage asks who is watching; the choice is kept in localStorage
  // and sent with every call.
  async function profilesPage(live) {
    await app.loadMe();
    if (!live() || !app.me()) return;
    const me = app.me();
    const pick = async (id) => {
      api.profileChoice.set(id);
      await app.loadMe();
      app.go('#/');
    };
    show(
      h('h1', {}, 'Who is watching?'),
      h('div', { class: 'profiles', id: 'profiles' }, me.profiles.map((p) =>
        h('button', { type: 'button', class: `profile${p.id === me.profile ? ' on' : ''}`, 'data-profile': p.id, 'data-kids': p.kids ? 'yes' : 'no', onclick: () => pick(p.id) },
          h('span', { class: 'avatar' }, p.name.slice(0, 1)), h('span', { class: 'name' }, p.name),
          p.kids ? h('span', { class: 'badge kids' }, 'Kids') : null))),
      h('h2', {}, 'Add a profile'),
      profileForm(() => app.route()),
    );
  }

  const when = (t) => (t ? new Date(t).toLocaleString() : '');

  // accountPage shows the account, its plan and what the plan entitles to,
  // the profiles, the streams playing now, and signing out.
  async function accountPage(live) {
    const [, titles] = await Promise.all([app.loadMe(), api.titles().catch(() => [])]);
    if (!live() || !app.me()) return;
    const me = app.me();
    const names = new Map(titles.map((t) => [t.id, t.name]));
    const plan = me.plan;
    const redraw = () => app.route();
    const status = h('p', { class: 'status', id: 'account-status' });
    const act = (fn) => async () => {
      try {
        await fn();
      } catch (err) {
        status.replaceChildren(errorBox(err.message));
      }
    };
    const { signedOut } = app;
    show(
      h('h1', {}, 'Account'),
      h('dl', { class: 'facts', id: 'account-info' },
        h('dt', {}, 'Email'), h('dd', { id: 'account-email' }, me.email),
        h('dt', {}, 'Member since'), h('dd', {}, when(me.created)),
        h('dt', {}, 'Signed in until'), h('dd', {}, when(me.session_expires_at))),
      h('section', { id: 'plan' },
        h('h2', {}, 'Plan'),
        h('p', {}, h('strong', { id: 'plan-name' }, plan.name || plan.id), ' · ', money(plan.price), plan.period ? ` / ${plan.period}` : ''),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Max resolution'), h('dd', { id: 'plan-height' }, resolution(plan.max_height)),
          h('dt', {}, 'Screens at once'), h('dd', { id: 'plan-screens' }, String(plan.max_streams)),
          h('dt', {}, 'Downloads'), h('dd', { id: 'plan-downloads' }, plan.downloads ? 'Yes' : 'No'))),
      h('section', { id: 'account-profiles' },
        h('h2', {}, 'Profiles'),
        h('table', {}, h('tbody', {}, me.profiles.map((p, i) => h('tr', { 'data-profile': p.id },
          h('td', {}, p.name),
          h('td', {}, p.kids ? h('span', { class: 'badge kids' }, 'Kids') : ''),
          h('td', { class: 'muted' }, p.id === me.profile ? 'watching now' : ''),
          h('td', {}, i === 0 ? h('span', { class: 'muted' }, 'first profile') : h('button', { type: 'button', class: 'danger', onclick: act(async () => {
            await api.deleteProfile(p.id);
            redraw();
          }) }, 'Delete')))))),
        profileForm(redraw)),
      h('section', { id: 'streams' },
        h('h2', {}, `Playing now (${me.streams.length} of ${plan.max_streams})`),
        me.streams.length ? h('table', {}, h('tbody', {}, me.streams.map((st) => h('tr', { 'data-stream': st.id },
          h('td', {}, h('a', { href: `#/title/${encodeURIComponent(st.title)}` }, names.get(st.title) || st.title)),
          h('td', {}, app.profileOf(st.profile)?.name || ''),
          h('td', { class: 'muted' }, `since ${when(st.started)}`),
          h('td', {}, h('button', { type: 'button', onclick: act(async () => {
            await api.endStream(st.id);
            redraw();
          }) }, 'Stop')))))) : h('p', { class: 'muted' }, 'Nothing is playing.')),
      h('p', { class: 'who' },
        h('button', { type: 'button', id: 'sign-out', onclick: act(async () => { await api.signOut(); signedOut(); }) }, 'Sign out'),
        h('button', { type: 'button', id: 'sign-out-everywhere', class: 'danger', onclick: act(async () => { await api.signOutEverywhere(); signedOut(); }) }, 'Sign out everywhere')),
      status,
    );
  }

  return { signInPage, signUpPage, profilesPage, accountPage };
}
