// @ts-check
// The audit chain's verification result and last signed checkpoint, shown in the top bar.
import { getJson } from './api.js';
import { byId, el, formatUtc } from './dom.js';

/** @typedef {'verified' | 'broken' | 'unavailable' | 'unknown'} ChainState */
/** @type {Record<ChainState, { icon: string }>} */
const STATES = {
  verified: { icon: '✓' },
  broken: { icon: '✖' },
  unavailable: { icon: '?' },
  unknown: { icon: '…' },
};

/** @param {ChainState} state @param {string} message @param {(Node | string)[]} [checkpoint] */
function show(state, message, checkpoint = []) {
  byId('chain-state').setAttribute('data-state', state);
  byId('chain-icon').textContent = STATES[state].icon;
  byId('chain-text').textContent = message;
  byId('chain-checkpoint').replaceChildren(...checkpoint);
}

/**
 * @param {{ seq: string, at: string, valid: boolean } | null | undefined} checkpoint
 * @param {string[]} [warnings]
 * @returns {(Node | string)[]}
 */
function checkpointNodes(checkpoint, warnings = []) {
  if (!checkpoint) {
    const unsigned = warnings.some((w) => w.includes('signing key'));
    return [
      el(
        'span',
        { title: warnings.join(' ') },
        el('span', { 'aria-hidden': 'true' }, '⚠ '),
        unsigned ? 'No checkpoints: no signing key configured' : 'No signed checkpoint yet',
      ),
    ];
  }
  const signature = checkpoint.valid ? 'signature valid' : 'signature INVALID';
  return [
    `Checkpoint #${checkpoint.seq} · `,
    el('time', { datetime: checkpoint.at, title: checkpoint.at }, `${formatUtc(checkpoint.at)} UTC`),
    ' · ',
    el('span', { class: checkpoint.valid ? '' : 'failure' }, signature),
  ];
}

/** Verifies the chain; returns the sentence it showed, so a change can be announced. @param {{ signal?: AbortSignal | undefined }} [options] */
export async function verifyChain({ signal } = {}) {
  byId('chain-state').setAttribute('aria-busy', 'true');
  try {
    const result = await getJson('/v1/audit/verify', { signal });
    const checked = `${result.checked} event${result.checked === 1 ? '' : 's'} checked`;
    if (result.ok && result.lastCheckpoint?.valid !== false) {
      const message = `Chain verified · ${checked}`;
      show('verified', message, checkpointNodes(result.lastCheckpoint, result.warnings));
      return message;
    }
    const where = result.firstBadSeq ? ` at event #${result.firstBadSeq}` : '';
    const why = result.reason
      ? `: ${result.reason}`
      : result.ok
        ? ': the checkpoint signature is invalid'
        : '';
    const others = (result.badEventCount ?? 0) - 1;
    const more = others > 0 ? ` (and ${others} more bad event${others === 1 ? '' : 's'})` : '';
    const message = `Chain broken${where}${why}${more}`;
    show('broken', message, checkpointNodes(result.lastCheckpoint, result.warnings));
    return message;
  } catch (error) {
    const failure = /** @type {Error & { status?: number }} */ (error);
    if (failure?.name === 'AbortError' || failure?.status === 401) throw error;
    const message = `Chain status unavailable: ${failure.message}`;
    show('unavailable', message);
    return message;
  } finally {
    byId('chain-state').removeAttribute('aria-busy');
  }
}

export function resetChain() {
  show('unknown', 'Checking audit chain…');
}
