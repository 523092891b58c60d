// @ts-check
// Entry point: sign-in, hash routes (`#/keys?filters`, `#/keys/<id>`), live polling, exports.
import { download, getJson, session } from './api.js';
import { resetChain, verifyChain } from './chain-status.js';
import { byId } from './dom.js';
import { createKeyPage } from './key-page.js';
import { createKeysView, exportFilters, filtersFrom } from './keys-view.js';
import { createOverview } from './overview.js';

const POLL_MS = 5_000;
const CHAIN_POLL_MS = 60_000;
const STATUS_SHOWN_MS = 8_000;
const KEY_ROUTE = /^#\/keys\/([0-9a-f-]{36})$/;
/** @typedef {'sign-in' | 'keys' | 'key'} ViewName */
/** @type {Record<ViewName, string>} */
const VIEWS = { 'sign-in': 'view-sign-in', keys: 'view-keys', key: 'view-key' };
/** @type {Record<ViewName, string>} */
const HEADINGS = { 'sign-in': 'sign-in-heading', keys: 'keys-heading', key: 'key-heading' };

/** @type {ViewName | null} */
let currentView = null;
/** @type {AbortController | null} */
let controller = null;
let busy = false;
let lastListHash = '#/keys';
/** @type {string | null} */
let lastKeyId = null;
/** @type {ReturnType<typeof setInterval>[]} */
let timers = [];

/** @type {ReturnType<typeof setTimeout> | undefined} */
let statusTimer;
/** @param {string} message */
function announce(message) {
  const status = byId('status');
  // Clearing first makes a repeated sentence be read again.
  status.textContent = '';
  clearTimeout(statusTimer);
  requestAnimationFrame(() => {
    status.textContent = message;
    statusTimer = setTimeout(() => {
      status.textContent = '';
    }, STATUS_SHOWN_MS);
  });
}

/** @param {string} message */
function showAlert(message) {
  byId('alert-text').textContent = message;
  byId('alert').hidden = false;
}

function hideAlert() {
  byId('alert').hidden = true;
  byId('alert-text').textContent = '';
}

/** @param {ViewName} name */
function showView(name) {
  const changed = currentView !== name;
  currentView = name;
  for (const [view, id] of Object.entries(VIEWS)) byId(id).hidden = view !== name;
  byId('session-bar').hidden = name === 'sign-in';
  const title = { 'sign-in': 'Sign in', keys: 'Deploy keys', key: 'Key timeline' }[name];
  document.title = `${title} · Deploy key audit`;
  return changed;
}

/** @param {unknown} thrown @param {string} [what] */
function handleError(thrown, what) {
  const error = /** @type {Error & { status?: number }} */ (thrown);
  if (error?.name === 'AbortError') return;
  if (error?.status === 401) {
    signOut(`Signed out: ${error.message}. Sign in again.`);
    return;
  }
  showAlert(what ? `Could not load the ${what}: ${error.message}` : error.message);
}

const overview = createOverview();
const keysView = createKeysView({
  openKey: (id) => {
    location.hash = `#/keys/${id}`;
  },
  announce,
});
const keyPage = createKeyPage({ announce, reportError: handleError });

function stopPolling() {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  controller?.abort();
}

/** Announces the result when asked to, or when it changed since the last check. */
async function checkChain({ announceResult = false } = {}) {
  try {
    const before =
      byId('chain-state').getAttribute('data-state') === 'unknown' ? null : byId('chain-text').textContent;
    const message = await verifyChain();
    if (announceResult || (before && message !== before)) announce(message);
  } catch (error) {
    handleError(error);
  }
}

async function refresh() {
  if (busy || document.hidden || !session.token || currentView === 'sign-in') return;
  busy = true;
  try {
    if (currentView === 'key') await keyPage.refresh({ signal: controller?.signal });
    else {
      const filters = filtersFrom(new URLSearchParams(location.hash.split('?')[1] ?? ''));
      await Promise.all([
        keysView.refresh({ signal: controller?.signal }),
        overview.show(filters, { signal: controller?.signal }),
      ]);
    }
  } catch (error) {
    handleError(error, currentView === 'key' ? 'key' : 'keys');
  } finally {
    busy = false;
  }
}

function startSession() {
  stopPolling();
  timers = [setInterval(refresh, POLL_MS), setInterval(checkChain, CHAIN_POLL_MS)];
  resetChain();
  checkChain();
}

function signOut(message = '') {
  stopPolling();
  session.token = null;
  byId('keys-body').replaceChildren();
  byId('key-facts').replaceChildren();
  byId('timeline').replaceChildren();
  hideAlert();
  showView('sign-in');
  byId('sign-in-error').textContent = message;
  byId('token').focus();
}

async function route() {
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  if (!session.token) {
    if (showView('sign-in')) byId('token').focus();
    return;
  }
  const match = KEY_ROUTE.exec(location.hash);
  const view = match ? 'key' : 'keys';
  const changed = showView(view);
  if (changed) {
    hideAlert();
    byId(HEADINGS[view]).focus();
  }
  busy = true;
  try {
    if (match) {
      lastKeyId = match[1];
      byId('back-to-keys').setAttribute('href', lastListHash);
      await keyPage.show(match[1], { signal });
    } else {
      lastListHash = location.hash.startsWith('#/keys') ? location.hash : '#/keys';
      const query = location.hash.startsWith('#/keys?') ? location.hash.slice('#/keys?'.length) : '';
      const filters = filtersFrom(new URLSearchParams(query));
      await Promise.all([keysView.show(filters, { signal }), overview.show(filters, { signal })]);
      if (changed && lastKeyId) {
        const row = byId('keys-body').querySelector(`tr[data-id="${CSS.escape(lastKeyId)}"]`);
        /** @type {HTMLElement | null} */ (row)?.focus();
      }
    }
  } catch (error) {
    handleError(error, view === 'key' ? 'key' : 'keys');
  } finally {
    busy = false;
  }
}

/** @param {string} hash */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

byId('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (byId('token'));
  const button = /** @type {HTMLButtonElement} */ (byId('sign-in-submit'));
  const error = byId('sign-in-error');
  const token = input.value.trim();
  if (!token) {
    error.textContent = 'Enter an auditor token.';
    input.focus();
    return;
  }
  button.disabled = true;
  error.textContent = '';
  try {
    await getJson('/v1/keys?limit=1', { token });
    session.token = token;
    input.value = '';
    startSession();
    go(KEY_ROUTE.test(location.hash) || location.hash.startsWith('#/keys') ? location.hash : '#/keys');
  } catch (failure) {
    error.textContent = `Sign-in failed: ${/** @type {Error} */ (failure).message}`;
    input.select();
    input.focus();
  } finally {
    button.disabled = false;
  }
});

byId('sign-out').addEventListener('click', () => {
  signOut('Signed out.');
});
byId('alert-close').addEventListener('click', hideAlert);
byId('chain-verify').addEventListener('click', () => {
  resetChain();
  checkChain({ announceResult: true });
});

keysView.form.addEventListener('submit', (event) => {
  event.preventDefault();
  go(keysView.formHash());
});
// Filters apply as they change, once typing pauses; the URL follows without a history entry per key.
const FILTER_DELAY_MS = 350;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let filterTimer;
function applyFiltersSoon() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    const hash = keysView.formHash();
    if (location.hash === hash) return;
    history.replaceState(null, '', hash);
    route();
  }, FILTER_DELAY_MS);
}
keysView.form.addEventListener('input', applyFiltersSoon);
keysView.form.addEventListener('change', applyFiltersSoon);
keysView.form.addEventListener('reset', (event) => {
  event.preventDefault();
  go('#/keys');
});
keysView.more.addEventListener('click', async () => {
  try {
    await keysView.loadMore({ signal: controller?.signal });
  } catch (error) {
    handleError(error, 'keys');
  }
});

/** @param {string | null} scope @returns {Record<string, string | null | undefined>} */
function exportQuery(scope) {
  if (scope === 'key') return { keyId: keyPage.keyId };
  return exportFilters(filtersFrom(new URLSearchParams(lastListHash.split('?')[1] ?? '')));
}

for (const button of document.querySelectorAll('button[data-export]')) {
  if (!(button instanceof HTMLButtonElement)) continue;
  button.addEventListener('click', async () => {
    const format = button.getAttribute('data-export');
    const scope = button.getAttribute('data-scope');
    // As URLSearchParams would spell a missing attribute: `null`.
    const params = new URLSearchParams({ format: String(format) });
    for (const [name, value] of Object.entries(exportQuery(scope))) if (value) params.set(name, value);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
    const fallback = `audit-events-${scope === 'key' ? /** @type {string} */ (keyPage.keyId).slice(0, 8) : 'all'}-${stamp}.${format}`;
    button.disabled = true;
    try {
      const saved = await download(`/v1/audit/events/export?${params}`, fallback);
      announce(`Saved ${saved.name} (${saved.bytes.toLocaleString()} bytes)`);
    } catch (error) {
      handleError(error, 'export');
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && currentView === 'key' && !event.defaultPrevented) go(lastListHash);
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refresh();
});
window.addEventListener('hashchange', route);

if (session.token) startSession();
route();
