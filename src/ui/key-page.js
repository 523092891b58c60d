// @ts-check
// One key: its facts and its full audit timeline, oldest event first, refreshed live.
import { getJson, withQuery } from './api.js';
import { attentionBadges, byId, el, formatUtc, shortId, statusBadge, timeEl } from './dom.js';

/**
 * @typedef {import('./dom.js').KeyView} KeyView
 * @typedef {{ seq: string, at: string, actor: string, action: string, hash: string, details?: Record<string, unknown> }} AuditEvent
 * @typedef {{ announce: (message: string) => void, reportError: (error: unknown, what: string) => void }} KeyPageDeps
 */

const EVENTS_PAGE = 200;
const MAX_EVENT_PAGES = 20;

/** @param {string} keyId @param {AbortSignal | undefined} signal */
async function loadEvents(keyId, signal) {
  /** @type {AuditEvent[]} */
  const events = [];
  /** @type {string | undefined} */
  let cursor;
  for (let page = 0; page < MAX_EVENT_PAGES; page += 1) {
    const body = await getJson(
      withQuery('/v1/audit/events', { keyId, order: 'asc', limit: EVENTS_PAGE, cursor }),
      { signal },
    );
    events.push(...body.items);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  return events;
}

/** @param {string} name @param {...(Node | string | null | undefined)} value */
function fact(name, ...value) {
  return [
    el('dt', {}, name),
    el('dd', {}, ...(value.length ? value : [el('span', { class: 'muted' }, '—')])),
  ];
}

/** @param {string | null | undefined} value */
function text(value, className = '') {
  return value ? el('span', { class: className }, String(value)) : null;
}

/**
 * The job the key follows, in the platform's own words, or null for a key bound to nothing.
 * @param {import('./dom.js').KeyBinding | null | undefined} binding
 */
function bindingText(binding) {
  if (!binding) return null;
  switch (binding.kind) {
    case 'github-actions': {
      const job = binding.checkRunId ? ` · job ${binding.checkRunId}` : '';
      return `GitHub Actions (${binding.host}) · ${binding.repository} · run ${binding.runId} attempt ${binding.runAttempt}${job}`;
    }
    case 'gitlab-ci':
      return `GitLab CI (${binding.host}) · ${binding.project} · job ${binding.jobId} · pipeline ${binding.pipelineId}`;
    case 'kubernetes-job':
      return `Kubernetes Job ${binding.namespace}/${binding.name}`;
    case 'kubernetes-pod':
      return `Kubernetes pod ${binding.namespace}/${binding.name}`;
  }
}

/** @param {KeyView} key @param {string | undefined} requestedBy */
function factsOf(key, requestedBy) {
  const vault = key.vault ? `${key.vault.mount}/${key.vault.path}` : '';
  return [
    ...fact('Status', el('span', { class: 'status-cell' }, statusBadge(key.status), ...attentionBadges(key))),
    ...fact('Repository', el('span', { class: 'strong' }, key.repository)),
    ...fact('Provider', key.provider),
    ...fact('Job', el('span', { class: 'mono' }, key.jobId)),
    ...fact('Bound to', ...[text(bindingText(key.binding), 'wrap binding')].filter(Boolean)),
    ...fact('Requested by', ...[text(requestedBy, 'mono wrap')].filter(Boolean)),
    ...fact('Delivery', key.delivery),
    ...fact('Created', timeEl(key.createdAt), ' UTC'),
    ...fact('Expires', timeEl(key.expiresAt), ' UTC'),
    ...fact('Revoked', ...(key.revokedAt ? [timeEl(key.revokedAt), ' UTC'] : [])),
    ...fact('Revoke reason', ...[text(key.revokeReason)].filter(Boolean)),
    ...fact('Failure', ...[text(key.failureReason, 'failure')].filter(Boolean)),
    ...fact('Fingerprint', ...[text(key.fingerprint, 'mono wrap')].filter(Boolean)),
    ...fact('Vault path', ...[text(vault, 'mono wrap')].filter(Boolean)),
    ...fact('Clone URL', ...[text(key.cloneUrl, 'mono wrap')].filter(Boolean)),
    ...fact('Key id', el('span', { class: 'mono wrap' }, key.id)),
  ];
}

/** @param {unknown} value */
function detailValue(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** @param {AuditEvent} event */
function eventItem(event) {
  const details = Object.entries(event.details ?? {});
  return el(
    'li',
    { class: 'event', 'data-action': event.action, 'data-seq': event.seq },
    el('span', { class: 'event-dot', 'aria-hidden': 'true' }),
    el(
      'div',
      { class: 'event-head' },
      el('span', { class: 'event-action' }, event.action),
      el('span', { class: 'event-time' }, timeEl(event.at), ' UTC'),
    ),
    el(
      'div',
      { class: 'event-meta' },
      'by ',
      el('span', { class: 'mono' }, event.actor),
      ` · event #${event.seq} · hash `,
      el('span', { class: 'mono', title: event.hash }, `${String(event.hash).slice(0, 12)}…`),
    ),
    details.length
      ? el(
          'dl',
          { class: 'event-details' },
          ...details.flatMap(([name, value]) => [
            el('dt', {}, name),
            el('dd', { class: 'mono wrap' }, detailValue(value)),
          ]),
        )
      : null,
  );
}

/**
 * What the page last showed, so a refresh announces only what changed since.
 * @typedef {{ status: string | null, events: number }} Shown
 */

/** @param {KeyView} key @param {string | undefined} requestedBy @param {Shown} shown @param {KeyPageDeps['announce']} announce */
function renderKey(key, requestedBy, shown, announce) {
  byId('key-heading').textContent = `${key.repository} · key ${shortId(key.id)}`;
  byId('key-facts').replaceChildren(...factsOf(key, requestedBy));
  if (shown.status && shown.status !== key.status) announce(`This key is now ${key.status}`);
  shown.status = key.status;
}

/** @param {AuditEvent[]} events @param {Shown} shown @param {KeyPageDeps['announce']} announce */
function renderEvents(events, shown, announce) {
  const list = byId('timeline');
  if (shown.events >= 0 && events.length > shown.events) {
    const added = events.slice(shown.events).map((e) => e.action);
    announce(`New audit event: ${added.join(', ')}`);
  }
  shown.events = events.length;
  list.replaceChildren(...events.map(eventItem));
  const empty = byId('timeline-empty');
  empty.hidden = events.length > 0;
  empty.textContent = 'No audit events for this key.';
  list.hidden = false;
}

/** @param {Error} error */
function renderEventsError(error) {
  byId('timeline').hidden = true;
  const empty = byId('timeline-empty');
  empty.hidden = false;
  empty.textContent = `The audit timeline could not be loaded: ${error.message}`;
}

/** Clears the previous key off the page while the next one loads. @param {string} id */
function showLoading(id) {
  byId('key-heading').textContent = `Key ${shortId(id)}`;
  byId('key-facts').replaceChildren();
  byId('timeline').replaceChildren();
  byId('timeline-empty').hidden = true;
  byId('key-updated').textContent = 'Loading…';
}

/** @param {KeyPageDeps} deps */
export function createKeyPage({ announce, reportError }) {
  /** @type {string | null} */
  let keyId = null;
  /** @type {Shown} */
  let shown = { status: null, events: -1 };

  /** @param {AbortSignal | undefined} signal */
  async function load(signal) {
    const id = keyId ?? '';
    const [key, events] = await Promise.allSettled([
      getJson(`/v1/keys/${encodeURIComponent(id)}`, { signal }),
      loadEvents(id, signal),
    ]);
    if (key.status === 'rejected') throw key.reason;
    const list = events.status === 'fulfilled' ? events.value : [];
    const requested = list.find((e) => e.action === 'key.requested');
    renderKey(key.value, requested?.actor, shown, announce);
    if (events.status === 'fulfilled') renderEvents(events.value, shown, announce);
    else if (events.reason?.name === 'AbortError' || events.reason?.status === 401) throw events.reason;
    else {
      renderEventsError(events.reason);
      reportError(events.reason, 'audit timeline');
    }
    byId('key-updated').textContent = `Live · updated ${formatUtc(new Date().toISOString()).slice(11)} UTC`;
  }

  return {
    get keyId() {
      return keyId;
    },
    /** @param {string} id @param {{ signal?: AbortSignal | undefined }} [options] */
    async show(id, { signal } = {}) {
      if (id !== keyId) {
        keyId = id;
        shown = { status: null, events: -1 };
        showLoading(id);
      }
      await load(signal);
    },
    /** @param {{ signal?: AbortSignal | undefined }} [options] */
    refresh({ signal } = {}) {
      return load(signal);
    },
  };
}
