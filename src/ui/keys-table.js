// @ts-check
// The keys table's rows: how each key is drawn, the count line, what changed between refreshes,
// and moving between rows with the keyboard.
import { attentionBadges, byId, el, isOverdue, isRevokeFailed, shortId, statusBadge, timeEl } from './dom.js';

/** @typedef {import('./dom.js').KeyView} KeyView */

/** @param {KeyView} key @param {number} now */
function needsAttention(key, now) {
  return isOverdue(key, now) || isRevokeFailed(key);
}

/** @param {KeyView} key @param {number} now */
function rowFor(key, now) {
  return el(
    'tr',
    {
      tabindex: '0',
      'data-id': key.id,
      'data-status': key.status,
      class: needsAttention(key, now) ? 'row-attention' : null,
      'aria-describedby': 'keys-row-hint',
    },
    el('td', {}, el('span', { class: 'status-cell' }, statusBadge(key.status), ...attentionBadges(key, now))),
    el('th', { scope: 'row', class: 'repo' }, key.repository),
    el('td', {}, key.provider),
    el('td', { class: 'mono' }, key.jobId),
    el('td', {}, timeEl(key.createdAt)),
    el('td', {}, timeEl(key.expiresAt)),
    el('td', {}, timeEl(key.revokedAt)),
    el('td', { class: 'mono muted', title: key.fingerprint ?? key.id }, shortId(key.id)),
  );
}

/** @param {KeyView[]} rows @param {number} now @param {boolean} moreAvailable */
function countText(rows, now, moreAvailable) {
  const attention = rows.filter((key) => needsAttention(key, now)).length;
  return (
    `${rows.length} key${rows.length === 1 ? '' : 's'} shown` +
    (attention ? ` · ${attention} need${attention === 1 ? 's' : ''} attention` : '') +
    (moreAvailable ? ' · more available' : '')
  );
}

/**
 * Draws `rows` into the table body, keeping focus on the row that had it so a live refresh does
 * not throw a keyboard user back to the top.
 * @param {HTMLElement} body @param {KeyView[]} rows @param {boolean} moreAvailable
 */
export function renderRows(body, rows, moreAvailable) {
  const now = Date.now();
  const focusedId = document.activeElement?.closest?.('#keys-body tr')?.getAttribute('data-id');
  body.replaceChildren(...rows.map((key) => rowFor(key, now)));
  byId('keys-empty').hidden = rows.length > 0;
  byId('keys-count').textContent = countText(rows, now, moreAvailable);
  const focused = focusedId ? body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"]`) : null;
  /** @type {HTMLElement | null} */ (focused)?.focus();
}

/**
 * What a refresh changed, in words for a screen reader, or '' when nothing did.
 * @param {KeyView[]} before @param {KeyView[]} after
 */
export function describeChanges(before, after) {
  const previous = new Map(before.map((key) => [key.id, key.status]));
  /** @type {string[]} */
  const changes = [];
  for (const key of after) {
    const was = previous.get(key.id);
    if (was && was !== key.status)
      changes.push(`${key.repository} (${shortId(key.id)}) is now ${key.status}`);
  }
  const added = after.filter((key) => !previous.has(key.id)).length;
  if (added) changes.push(`${added} new key${added === 1 ? '' : 's'}`);
  return changes.join('; ');
}

/** @param {HTMLElement} body @param {Element} row @param {string} key */
function rowToFocus(body, row, key) {
  if (key === 'ArrowDown') return row.nextElementSibling;
  if (key === 'ArrowUp') return row.previousElementSibling;
  if (key === 'Home') return body.firstElementChild;
  if (key === 'End') return body.lastElementChild;
  return undefined;
}

/**
 * Opens a key on click, Enter or Space; arrows, Home and End move between rows.
 * @param {HTMLElement} body @param {(id: string | null) => void} openKey
 */
export function wireRowNavigation(body, openKey) {
  body.addEventListener('click', (event) => {
    const row = /** @type {Element} */ (event.target).closest('tr[data-id]');
    if (row) openKey(row.getAttribute('data-id'));
  });
  body.addEventListener('keydown', (event) => {
    const row = /** @type {Element} */ (event.target).closest('tr[data-id]');
    if (!row) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      openKey(row.getAttribute('data-id'));
      return;
    }
    const next = rowToFocus(body, row, event.key);
    if (next === undefined) return;
    event.preventDefault();
    /** @type {HTMLElement | null} */ (next)?.focus();
  });
}
