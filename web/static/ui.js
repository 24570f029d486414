// ui.js: small DOM helpers shared by the pages.

// h builds an element: h('a', {href: '#/'}, 'text', child...). Attributes
// starting with "on" are listeners; text is always set as text, never as
// HTML, so titles and names from the API cannot inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// show replaces the page's content.
export function show(...nodes) {
  const view = document.getElementById('view');
  view.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
  return view;
}

// scaled formats n in the largest unit of units (each base times the
// previous) that keeps it at or above 1.
function scaled(n, base, units) {
  if (!n) return `0 ${units[0]}`;
  let i = 0;
  while (n >= base && i < units.length - 1) {
    n /= base;
    i++;
  }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

// bytes formats a byte count.
export const bytes = (n) => scaled(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);

// bits formats a rate in bits per second.
export const bits = (n) => scaled(n, 1000, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s']);

// money formats a price given in the currency's minor units (cents), in
// the browser's locale: {amount: 799, currency: "EUR"} is "€7.99".
export function money(m) {
  if (!m || !m.currency) return '';
  try {
    const f = new Intl.NumberFormat(undefined, { style: 'currency', currency: m.currency });
    return f.format(m.amount / 10 ** f.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${m.amount} ${m.currency} (minor units)`; // a currency code the browser does not know
  }
}

// resolution names a plan's tallest picture.
export function resolution(height) {
  const name = height >= 2160 ? '4K Ultra HD' : height >= 1080 ? 'Full HD' : height >= 720 ? 'HD' : 'SD';
  return `${height}p (${name})`;
}

// pct formats a ratio as a percentage with digits decimals.
export const pct = (r, digits = 0) => `${digits ? (100 * (r || 0)).toFixed(digits) : Math.round(100 * (r || 0))}%`;

// meter is a labelled progress bar.
export function meter(value, max, label) {
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  const fill = h('div', { class: 'fill' });
  fill.style.width = `${(100 * ratio).toFixed(1)}%`; // CSSOM: allowed by the page's CSP
  return h('div', { class: 'meter', title: label, role: 'meter', 'aria-valuenow': Math.round(100 * ratio), 'aria-valuemin': 0, 'aria-valuemax': 100 },
    fill, h('span', {}, label));
}

// errorBox shows what went wrong in words.
export const errorBox = (msg) => h('p', { class: 'error', role: 'alert' }, msg);
