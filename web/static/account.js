// account.js: the pages of the account: sign-in, sign-up with the plans
// on offer, the profile picker and the account page (plan, plan and
// billing, profiles, streams playing now, signing out). app is what they
// need of the router (app.js): me() (GET /v1/account, null when signed
// out), loadMe, go, route, profileOf, signedIn and signedOut.
//
// Plan and billing: the subscription (a trial, paid, overdue, ended),
// subscribing with a card, changing plan and cancelling, and the
// invoices. The card number goes from its field to the control plane and
// nowhere else: not kept, not logged, and the field is emptied once the
// control plane has answered. Each submission that can move money has an
// Idempotency-Key of its own; when its answer is lost (the network, a
// 5xx) the form keeps what was entered and the same key, so that sending
// it again cannot charge twice.

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
  const day = (t) => (t ? new Date(t).toLocaleDateString(undefined, { dateStyle: 'long' }) : '');

  // price is a plan's price per period: "€7.99 / month".
  const price = (p) => `${money(p.price)}${p.period ? ` / ${p.period}` : ''}`;

  // ENTITLING are the statuses of a subscription that let the account
  // play (past due: for a few days of grace).
  const ENTITLING = new Set(['trialing', 'active', 'past_due']);

  // STATUS names a subscription's status for the viewer.
  const STATUS = { trialing: 'Free trial', active: 'Active', past_due: 'Payment overdue', canceled: 'Ended', incomplete: 'Payment incomplete' };

  // unsure says whether a call that can move money may have done so
  // without the page hearing the answer: no answer at all, a server
  // error or a gateway timeout, or a 429 — retried, it must carry the
  // same Idempotency-Key.
  const unsure = (err) => !(err instanceof api.APIError) || err.status >= 500 || err.status === 429;

  // submission keeps the Idempotency-Key of a form's submission: a new
  // one for each new submission, the same one while a submission whose
  // answer was lost is sent again. A change to the form (reset) makes
  // the next submission a new one.
  function submission() {
    let key = '';
    return {
      reset() { key = ''; },
      // send calls call(key) and answers what it answers.
      async send(call) {
        key = key || api.idempotencyKey();
        try {
          const res = await call(key);
          key = '';
          return res;
        } catch (err) {
          if (!unsure(err)) key = '';
          throw err;
        }
      },
    };
  }

  // lost says what to do after an answer that did not come.
  const lost = (err, button) => `${err.message || String(err)}. The control plane may not have heard or answered: press ${button} again to send the same request — it cannot be charged twice.`;

  // subscriptionFacts shows what the subscription is and what comes next.
  function subscriptionFacts(sub, planName) {
    if (!sub) {
      return h('div', { id: 'subscription', 'data-status': 'none' }, h('p', {}, 'No subscription yet: choose a plan below.'));
    }
    const end = day(sub.current_period_end);
    const rows = [['Status', h('span', { class: `badge ${sub.status}`, id: 'subscription-status' }, STATUS[sub.status] || sub.status)], ['Plan', planName(sub.plan)]];
    let notice = null;
    switch (sub.status) {
      case 'trialing':
        rows.push(['Trial ends', day(sub.trial_end || sub.current_period_end)]);
        notice = sub.cancel_at_period_end ? `Your trial ends on ${end} and nothing will be charged.`
          : 'Subscribe before the trial ends to keep watching. Subscribing ends the trial: the first paid period starts at once.';
        break;
      case 'active':
        if (sub.cancel_at_period_end) {
          rows.push(['Ends', end]);
          notice = `Your subscription is canceled: you can watch until ${end}, and nothing more will be charged.`;
        } else {
          rows.push(['Renews', end]);
        }
        break;
      case 'past_due':
        rows.push(['Payment failed', day(sub.past_due_since)]);
        notice = 'The renewal payment failed. It is tried again over the next days; playback stops if it keeps failing.';
        break;
      case 'incomplete':
        notice = 'The first payment did not go through: subscribe again with another card.';
        break;
      case 'canceled':
        notice = 'This subscription has ended: choose a plan to subscribe again.';
        break;
      default:
    }
    if (sub.card) rows.push(['Card', sub.card]);
    if (sub.pending_plan) rows.push(['Changes to', `${planName(sub.pending_plan)} on ${end}`]);
    return h('div', { id: 'subscription', 'data-status': sub.status },
      h('dl', { class: 'facts' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-fact': k.toLowerCase().replace(/\s+/g, '-') }, v)])),
      notice ? h('p', { class: `notice ${sub.cancel_at_period_end ? 'canceling' : sub.status}`, id: 'subscription-notice' }, notice) : null);
  }

  // invoiceLines lists what an invoice charges and credits.
  const invoiceLines = (inv) => h('details', {},
    h('summary', {}, `${inv.lines.length} ${inv.lines.length === 1 ? 'line' : 'lines'}`),
    h('ul', { class: 'lines' }, inv.lines.map((l) => h('li', {},
      h('span', {}, l.description || l.kind), ' ',
      h('span', { class: 'muted' }, `${day(l.period_start)} – ${day(l.period_end)}`), ' ',
      h('span', { class: 'num' }, money(l.amount))))));

  // invoicesTable lists the invoices, newest first.
  function invoicesTable(invs) {
    if (!invs.length) return h('p', { class: 'muted', id: 'invoices' }, 'No invoices yet.');
    return h('table', { id: 'invoices' },
      h('thead', {}, h('tr', {}, ['Invoice', 'Date', 'Total', 'Status', 'Lines'].map((c, i) => h('th', { class: i === 2 ? 'num' : null }, c)))),
      h('tbody', {}, invs.map((inv) => h('tr', { 'data-invoice': inv.id, 'data-status': inv.status },
        h('td', {}, inv.number || inv.id),
        h('td', {}, day(inv.finalized || inv.created)),
        h('td', { class: 'num' }, money(inv.total)),
        h('td', {}, h('span', { class: `badge ${inv.status}` }, inv.status)),
        h('td', {}, (inv.lines || []).length ? invoiceLines(inv) : '')))));
  }

  // billingSection is the account's plan and billing: the subscription,
  // a form to subscribe or to change plan and cancel, and the invoices.
  // plans are the plans on offer, cheapest first; signedUpOn the plan
  // the account signed up on; onSubscription is called with the
  // subscription (null for none) each time it is loaded. It redraws
  // itself after every change; the status line keeps what the change
  // answered meanwhile.
  function billingSection(plans, signedUpOn, onSubscription = () => {}) {
    const byID = new Map(plans.map((p) => [p.id, p]));
    const planName = (id) => byID.get(id)?.name || id;
    const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const status = h('div', { class: 'status', id: 'billing-status', role: 'status' });
    const invoiceBox = h('div', {});
    const say = (...nodes) => status.replaceChildren(...nodes);

    const refresh = async () => {
      let sub;
      let invs;
      try {
        [sub, invs] = await Promise.all([
          api.subscription().catch((err) => { if (err.status === 404) return null; throw err; }),
          api.invoices().then((r) => r.invoices || []),
        ]);
      } catch (err) {
        body.replaceChildren(errorBox(err.status === 404 ? 'This control plane takes no payments.' : `Cannot show the subscription: ${err.message}`));
        invoiceBox.replaceChildren();
        return;
      }
      body.replaceChildren(subscriptionFacts(sub, planName), billingForm(sub));
      invoiceBox.replaceChildren(invoicesTable(invs));
      onSubscription(sub);
    };

    // chooser is the plans as radio cards, checked the one checked; tag
    // may say something of each (the plan now, the one to come).
    const chooser = (legend, checked, tag) => h('fieldset', { class: 'plans' }, h('legend', {}, legend),
      plans.map((p) => {
        const card = planCard(p, p.id === checked);
        const t = tag(p);
        if (t) card.append(h('span', { class: 'tag' }, t));
        return card;
      }));

    function billingForm(sub) {
      const paying = sub && (sub.status === 'active' || sub.status === 'past_due');
      if (paying) return manageForm(sub);
      return subscribeForm(sub);
    }

    // subscribeForm subscribes with a plan and a card: without a
    // subscription, in a trial, after a declined first payment or once
    // the subscription ended.
    function subscribeForm(sub) {
      const current = sub && sub.status !== 'canceled' ? sub.plan : signedUpOn.id;
      const card = h('input', { name: 'card', type: 'text', inputmode: 'numeric', autocomplete: 'cc-number', required: true,
        pattern: '[0-9 ]{12,28}', maxlength: 28, placeholder: '1234 5678 9012 3456', spellcheck: 'false', title: 'the card number: 12 to 19 digits, spaces allowed' });
      const button = h('button', { type: 'submit', id: 'subscribe' }, 'Subscribe');
      const attempt = submission();
      const form = h('form', { id: 'subscribe-form', class: 'billing-form' },
        chooser('Choose a plan', byID.has(current) ? current : plans[0]?.id, (p) => (sub && sub.status === 'trialing' && p.id === sub.plan ? 'Your trial' : '')),
        field('Card number', card, 'Charged at once for the first period; renews until you cancel.'),
        button);
      form.addEventListener('input', () => attempt.reset());
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const plan = form.querySelector('input[name=plan]:checked').value;
        button.disabled = true;
        say(h('p', { class: 'muted' }, `Subscribing to ${planName(plan)}…`));
        try {
          const res = await attempt.send((key) => api.subscribe(plan, card.value.replace(/\s/g, ''), key));
          card.value = '';
          say(h('p', { id: 'billing-done' }, `Subscribed to ${planName(res.plan || plan)}`,
            res.invoice ? `: ${money(res.invoice)} ${res.invoice.status}` : '', res.card ? ` with ${res.card}` : '', '.'));
          await refresh();
        } catch (err) {
          button.disabled = false;
          if (unsure(err)) {
            say(errorBox(lost(err, 'Subscribe')));
            return;
          }
          card.value = '';
          say(errorBox(err.message));
          if (err.status === 402 || err.status === 409) await refresh(); // the subscription is incomplete now, or was there already
        }
      });
      return form;
    }

    // manageForm changes the plan of a paid subscription (an upgrade at
    // once, charged for the rest of the period; a downgrade at its end)
    // and cancels it at the period's end.
    function manageForm(sub) {
      const end = day(sub.current_period_end);
      if (sub.cancel_at_period_end) return h('p', { class: 'muted' }, `To watch after ${end}, subscribe again once this subscription has ended.`);
      const cancelAttempt = submission();
      const cancel = h('button', { type: 'button', id: 'cancel-subscription', class: 'danger' }, 'Cancel subscription');
      cancel.addEventListener('click', async () => {
        if (!confirm(`Cancel your subscription? You can watch until ${end}; nothing more will be charged.`)) return;
        cancel.disabled = true;
        say(h('p', { class: 'muted' }, 'Cancelling…'));
        try {
          const res = await cancelAttempt.send((key) => api.cancelSubscription(key));
          say(h('p', { id: 'billing-done' }, `Canceled: you can watch until ${day(res.current_period_end)}.`));
          await refresh();
        } catch (err) {
          cancel.disabled = false;
          say(errorBox(unsure(err) ? lost(err, 'Cancel subscription') : err.message));
        }
      });
      if (sub.status !== 'active') {
        return h('div', { class: 'billing-form' },
          h('p', { class: 'muted' }, 'The plan can be changed again once the overdue payment has gone through.'), cancel);
      }
      const button = h('button', { type: 'submit', id: 'change-plan' }, 'Change plan');
      const attempt = submission();
      const form = h('form', { id: 'change-form', class: 'billing-form' },
        chooser('Change plan', sub.pending_plan || sub.plan, (p) => {
          if (p.id === sub.plan) return 'Your plan';
          if (p.id === sub.pending_plan) return `From ${end}`;
          return '';
        }),
        h('p', { class: 'muted' }, 'A dearer plan starts at once, charged for the rest of this period; a cheaper one starts when this period ends.'),
        h('p', { class: 'actions' }, button, ' ', cancel));
      form.addEventListener('input', () => attempt.reset());
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const plan = form.querySelector('input[name=plan]:checked').value;
        if (plan === sub.plan && !sub.pending_plan) {
          say(h('p', {}, `You are on ${planName(plan)} already.`));
          return;
        }
        button.disabled = true;
        say(h('p', { class: 'muted' }, `Changing to ${planName(plan)}…`));
        try {
          const res = await attempt.send((key) => api.changePlan(plan, key));
          let done = `You stay on ${planName(res.plan)}.`;
          if (res.pending_plan) done = `${planName(res.pending_plan)} starts on ${day(res.current_period_end)}; until then you keep ${planName(res.plan)}.`;
          else if (res.plan === plan && plan !== sub.plan) done = `Now on ${planName(plan)}${res.invoice ? `: ${money(res.invoice)} ${res.invoice.status} for the rest of this period` : ''}.`;
          say(h('p', { id: 'billing-done' }, done));
          await refresh();
        } catch (err) {
          button.disabled = false;
          say(errorBox(unsure(err) ? lost(err, 'Change plan') : err.message));
          if (!unsure(err)) await refresh();
        }
      });
      return form;
    }

    refresh();
    return h('section', { id: 'billing' },
      h('h2', {}, 'Plan & billing'), body, status,
      h('h3', {}, 'Invoices'), invoiceBox);
  }

  // planFacts is what plan p entitles to.
  const planFacts = (p) => [
    h('h2', {}, 'Plan'),
    h('p', {}, h('strong', { id: 'plan-name' }, p.name || p.id), ' · ', price(p)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Max resolution'), h('dd', { id: 'plan-height' }, resolution(p.max_height)),
      h('dt', {}, 'Screens at once'), h('dd', { id: 'plan-screens' }, String(p.max_streams)),
      h('dt', {}, 'Downloads'), h('dd', { id: 'plan-downloads' }, p.downloads ? 'Yes' : 'No'))];

  // accountPage shows the account, its plan and what the plan entitles to,
  // plan and billing, the profiles, the streams playing now, and signing
  // out. params.get('section') names a section to show first (billing,
  // from the player's "payment required").
  async function accountPage(live, params = new URLSearchParams()) {
    const [, plans] = await Promise.all([app.loadMe(),
      api.plans().then((ps) => ps.sort((a, b) => a.price.amount - b.price.amount)).catch(() => [])]);
    if (!live() || !app.me()) return;
    // The names of the titles playing, looked up by id.
    const titles = await api.titlesByID(app.me().streams.map((st) => st.title)).catch(() => []);
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
    // The plan section shows what the plan entitles to: the plan of the
    // subscription while it lets the account play (playback goes by it),
    // otherwise the one the account signed up on.
    const planBox = h('section', { id: 'plan' }, planFacts(plan));
    const playing = (p) => `Playing now (${me.streams.length} of ${p.max_streams})`;
    const streamsHeading = h('h2', {}, playing(plan));
    const showPlan = (sub) => {
      const p = (sub && ENTITLING.has(sub.status) && plans.find((x) => x.id === sub.plan)) || plan;
      planBox.replaceChildren(...planFacts(p));
      streamsHeading.textContent = playing(p);
    };
    show(
      h('h1', {}, 'Account'),
      h('dl', { class: 'facts', id: 'account-info' },
        h('dt', {}, 'Email'), h('dd', { id: 'account-email' }, me.email),
        h('dt', {}, 'Member since'), h('dd', {}, when(me.created)),
        h('dt', {}, 'Signed in until'), h('dd', {}, when(me.session_expires_at))),
      planBox,
      billingSection(plans, plan, showPlan),
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
        streamsHeading,
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
    const first = document.getElementById(params.get('section') || '');
    if (first) first.scrollIntoView({ block: 'start' });
  }

  return { signInPage, signUpPage, profilesPage, accountPage };
}
