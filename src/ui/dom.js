// @ts-check
// DOM helpers. Every piece of data reaches the page as a text node or an attribute value, never as
// markup: repository names, job ids and audit details are chosen by callers.

/**
 * A key as `GET /v1/keys` shows it (the fields the console reads).
 * @typedef {object} KeyView
 * @property {string} id
 * @property {string} status
 * @property {string} provider
 * @property {string} repository
 * @property {string} jobId
 * @property {string} expiresAt
 * @property {number} attempts
 * @property {string | null} [lastError]
 * @property {string | null} [failureReason]
 * @property {string} [delivery]
 * @property {string} [createdAt]
 * @property {string | null} [revokedAt]
 * @property {string | null} [revokeReason]
 * @property {string | null} [fingerprint]
 * @property {string} [cloneUrl]
 * @property {{ mount: string, path: string } | null} [vault]
 * @property {KeyBinding | null} [binding]
 */

/**
 * The platform job whose end revokes the key, as `GET /v1/keys/:id` shows it.
 * @typedef {{ kind: 'github-actions', host: string, repository: string, runId: string, runAttempt: string, checkRunId?: string }
 *   | { kind: 'gitlab-ci', host: string, project: string, jobId: string, pipelineId: string }
 *   | { kind: 'kubernetes-job' | 'kubernetes-pod', namespace: string, name: string, uid: string }} KeyBinding
 */

/** @param {string} id @returns {HTMLElement} */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

/**
 * Creates an element. `props` sets attributes (`class`, `data-*`, `aria-*`, …); children are nodes or
 * strings (added as text).
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [props]
 * @param {...(Node | string | null | undefined | false)} children
 */
export function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return element;
}

/** @param {Element} element @param {...(Node | string | null | undefined | false)} children */
export function replaceChildren(element, ...children) {
  element.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');

/** `2025-01-31 13:04:05`, in UTC, so every auditor reads the same instant. @param {string | null | undefined} iso */
export function formatUtc(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** A `<time>` element showing UTC, with the exact instant in its `datetime`. @param {string | null | undefined} iso */
export function timeEl(iso) {
  if (!iso) return el('span', { class: 'muted' }, '—');
  return el('time', { datetime: iso, title: iso }, formatUtc(iso));
}

/** @param {unknown} id */
export function shortId(id) {
  return typeof id === 'string' ? id.slice(0, 8) : '';
}

/** Overdue: past its expiry and still not revoked (invariant 1 is at risk). @param {KeyView} key */
export function isOverdue(key, now = Date.now()) {
  return ['pending', 'active', 'revoking'].includes(key.status) && Date.parse(key.expiresAt) < now;
}

// Flagged at the first failed attempt, not once all are spent: an auditor should not learn of a key
// the host refuses to delete minutes after the service does.
const revokeFailing = (/** @type {KeyView} */ key) =>
  key.status === 'revoking' && (key.attempts > 0 || Boolean(key.lastError || key.failureReason));

/** A key that did not go away cleanly: ended `failed`, or still `revoking` after a failed attempt. @param {KeyView} key */
export function isRevokeFailed(key) {
  return key.status === 'failed' || revokeFailing(key);
}

/** @type {Record<string, { icon: string, label: string }>} */
const STATUS = {
  pending: { icon: '◌', label: 'Pending' },
  active: { icon: '●', label: 'Active' },
  revoking: { icon: '↻', label: 'Revoking' },
  revoked: { icon: '✓', label: 'Revoked' },
  failed: { icon: '✖', label: 'Failed' },
};

/** The status as an icon plus a word, so it never depends on colour alone. @param {string} status */
export function statusBadge(status) {
  const known = STATUS[status] ?? { icon: '?', label: String(status) };
  return el(
    'span',
    { class: 'badge', 'data-status': status },
    el('span', { class: 'icon', 'aria-hidden': 'true' }, known.icon),
    known.label,
  );
}

/** Flags that need an auditor's attention, each as an icon and a label. @param {KeyView} key */
export function attentionBadges(key, now = Date.now()) {
  const badges = [];
  // A `failed` key already says so in its status badge; a failing revoke is still `revoking`.
  if (revokeFailing(key)) {
    const attempts = `${key.attempts} failed attempt${key.attempts === 1 ? '' : 's'}`;
    badges.push(
      el(
        'span',
        { class: 'flag flag-failed', title: key.lastError ?? '' },
        el('span', { class: 'icon', 'aria-hidden': 'true' }, '⚠'),
        `Revoke failing (${attempts})`,
      ),
    );
    if (key.lastError) badges.push(el('span', { class: 'flag-detail' }, key.lastError));
  }
  if (isOverdue(key, now)) {
    badges.push(
      el(
        'span',
        { class: 'flag flag-overdue' },
        el('span', { class: 'icon', 'aria-hidden': 'true' }, '◷'),
        'Overdue',
      ),
    );
  }
  return badges;
}
