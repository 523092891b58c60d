// @ts-check
// The keys table: filters (kept in the URL hash so Back and reload keep them), paging, live refresh.
import { getJson, withQuery } from './api.js';
import { byId, formatUtc } from './dom.js';
import { describeChanges, renderRows, wireRowNavigation } from './keys-table.js';

/**
 * @typedef {import('./dom.js').KeyView} KeyView
 * @typedef {Record<string, string>} Filters the list's filters by name, as the URL hash holds them
 * @typedef {{ signal?: AbortSignal | undefined }} Signalled
 * @typedef {{ openKey: (id: string | null) => void, announce: (message: string) => void }} KeysViewDeps
 */

const PAGE_SIZE = 50;
// Filters the keys API lacks (caller, date range) are applied here, on pages the API returns newest
// first; a larger page and a page budget bound how far back one load reads.
const SCAN_PAGE_SIZE = 200;
const MAX_PAGES_PER_LOAD = 10;
const MAX_CALLER_EVENT_PAGES = 20;
const API_FILTERS = ['provider', 'repository', 'jobId', 'status'];
export const FILTER_NAMES = [...API_FILTERS, 'caller', 'from', 'to', 'overdue'];

/** @param {URLSearchParams} params */
export function filtersFrom(params) {
  /** @type {Filters} */
  const filters = {};
  for (const name of FILTER_NAMES) {
    const value = params.get(name)?.trim();
    if (value) filters[name] = value;
  }
  return filters;
}

const DAY_MS = 86_400_000;
const dayStart = (/** @type {string | undefined} */ date) =>
  date ? Date.parse(`${date}T00:00:00Z`) : Number.NaN;

/** The date range as the audit API's `from` (inclusive) and `to` (exclusive) instants, in UTC. @param {Filters} filters */
function rangeIso(filters) {
  const from = dayStart(filters.from);
  const to = dayStart(filters.to) + DAY_MS;
  return {
    from: Number.isNaN(from) ? undefined : new Date(from).toISOString(),
    to: Number.isNaN(to) ? undefined : new Date(to).toISOString(),
  };
}

/** What the audit export can narrow by, out of the list's filters (it has no provider or status). @param {Filters} filters */
export function exportFilters(filters) {
  return {
    repository: filters.repository,
    jobId: filters.jobId,
    actor: filters.caller,
    ...rangeIso(filters),
  };
}

/** @param {KeyView} key @param {Filters} filters */
function inRange(key, filters) {
  const created = Date.parse(key.createdAt ?? '');
  return !(created < dayStart(filters.from)) && !(created >= dayStart(filters.to) + DAY_MS);
}

// The keys API does not say who asked for a key, but the audit log does: the `key.requested`
// event's actor is the caller.
/** @param {string} actor @param {Filters} filters @param {AbortSignal | undefined} signal */
async function keyIdsRequestedBy(actor, filters, signal) {
  /** @type {Set<string>} */
  const ids = new Set();
  /** @type {string | undefined} */
  let cursor;
  for (let page = 0; page < MAX_CALLER_EVENT_PAGES; page += 1) {
    const body = await getJson(
      withQuery('/v1/audit/events', {
        actor,
        action: 'key.requested',
        ...rangeIso(filters),
        order: 'desc',
        limit: 500,
        cursor,
      }),
      { signal },
    );
    for (const event of body.items) if (event.keyId) ids.add(event.keyId);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  return ids;
}

/**
 * Reads pages until `target` matching keys are in hand, the API runs out, or the keys get older
 * than the range's start.
 * @param {Filters} filters
 * @param {{ target: number, cursor?: string | null } & Signalled} options
 * @returns {Promise<{ rows: KeyView[], cursor: string | null }>}
 */
async function loadKeys(filters, { target, cursor, signal }) {
  const from = dayStart(filters.from);
  const callerKeys = filters.caller ? await keyIdsRequestedBy(filters.caller, filters, signal) : undefined;
  const scanning = Boolean(callerKeys || filters.from || filters.to);
  /** @type {KeyView[]} */
  const rows = [];
  /** @type {string | undefined} */
  let next = cursor ?? undefined;
  let pages = 0;
  do {
    const query = Object.fromEntries(API_FILTERS.map((name) => [name, filters[name]]));
    const page = await getJson(
      withQuery('/v1/keys', {
        ...query,
        overdue: filters.overdue ? 'true' : undefined,
        limit: scanning ? SCAN_PAGE_SIZE : PAGE_SIZE,
        cursor: next,
      }),
      { signal },
    );
    pages += 1;
    next = page.nextCursor ?? undefined;
    for (const key of /** @type {KeyView[]} */ (page.items)) {
      if (Date.parse(key.createdAt ?? '') < from) next = undefined;
      else if (inRange(key, filters) && (!callerKeys || callerKeys.has(key.id))) rows.push(key);
    }
  } while (next && rows.length < target && pages < MAX_PAGES_PER_LOAD);
  return { rows, cursor: next ?? null };
}

/** @param {HTMLFormElement} form @param {Filters} filters */
function fillForm(form, filters) {
  for (const name of FILTER_NAMES) {
    const input = /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
    if (input.type === 'checkbox') input.checked = Boolean(filters[name]);
    else input.value = filters[name] ?? '';
  }
}

/** The hash the form's filters stand for, e.g. `#/keys?repository=acme%2Fmodels`. @param {HTMLFormElement} form */
function formHash(form) {
  const params = new URLSearchParams();
  for (const name of FILTER_NAMES) {
    const input = /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
    const value = input.type === 'checkbox' ? (input.checked ? 'true' : '') : input.value.trim();
    if (value) params.set(name, value);
  }
  const query = params.toString();
  return query ? `#/keys?${query}` : '#/keys';
}

function stamp() {
  byId('keys-updated').textContent = `Live · updated ${formatUtc(new Date().toISOString()).slice(11)} UTC`;
}

/** @param {HTMLElement} body */
function showLoading(body) {
  body.replaceChildren();
  byId('keys-empty').hidden = true;
  byId('keys-count').textContent = 'Loading…';
}

/** @param {KeysViewDeps} deps */
export function createKeysView({ openKey, announce }) {
  const body = byId('keys-body');
  const form = /** @type {HTMLFormElement} */ (byId('filters'));
  const more = /** @type {HTMLButtonElement} */ (byId('keys-more'));
  /** @type {Filters} */
  let filters = {};
  /** @type {KeyView[]} */
  let rows = [];
  /** @type {string | null} */
  let cursor = null;
  let loadedOnce = false;

  function render() {
    renderRows(body, rows, Boolean(cursor));
    more.hidden = !cursor;
  }

  wireRowNavigation(body, openKey);

  return {
    formHash: () => formHash(form),
    form,
    more,
    /** Shows the keys for `nextFilters`, from the first page. */
    /** @param {Filters} nextFilters @param {Signalled} [options] */
    async show(nextFilters, { signal } = {}) {
      const changed = JSON.stringify(nextFilters) !== JSON.stringify(filters);
      filters = nextFilters;
      fillForm(form, filters);
      if (changed || !loadedOnce) {
        rows = [];
        showLoading(body);
      }
      const result = await loadKeys(filters, { target: PAGE_SIZE, signal });
      rows = result.rows;
      cursor = result.cursor;
      loadedOnce = true;
      render();
      stamp();
    },
    /** @param {Signalled} [options] */
    async loadMore({ signal } = {}) {
      if (!cursor) return;
      const result = await loadKeys(filters, { target: PAGE_SIZE, cursor, signal });
      rows = [...rows, ...result.rows.filter((key) => !rows.some((r) => r.id === key.id))];
      cursor = result.cursor;
      render();
      announce(`${result.rows.length} more key${result.rows.length === 1 ? '' : 's'} loaded`);
    },
    /** Re-reads as many keys as are on screen and says what changed. */
    /** @param {Signalled} [options] */
    async refresh({ signal } = {}) {
      const result = await loadKeys(filters, { target: Math.max(PAGE_SIZE, rows.length), signal });
      const changes = describeChanges(rows, result.rows);
      if (changes) announce(changes);
      rows = result.rows;
      cursor = result.cursor;
      render();
      stamp();
    },
  };
}
