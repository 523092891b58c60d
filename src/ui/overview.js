// @ts-check
// The overview panel: keys issued and revoked per hour, and revoke latency (p50, p99), drawn as SVG
// by the console itself from GET /v1/stats for the range the filters select (default: 24 hours).
import { getJson, withQuery } from './api.js';
import { byId } from './dom.js';

/**
 * @typedef {{ start: string, issued: number, revoked: number, latencyP50Seconds: number | null, latencyP99Seconds: number | null }} HourStats
 * @typedef {{ from: string, to: string, hours: HourStats[], latency: { count: number, p50Seconds: number | null, p99Seconds: number | null } }} Stats
 * @typedef {(value: number) => number} Scale
 */

const SVG = 'http://www.w3.org/2000/svg';
const HEIGHT = 150;
const PAD = { top: 10, right: 8, bottom: 22, left: 36 };

/**
 * @param {string} name
 * @param {Record<string, string | number>} [attributes]
 * @param {string} [text]
 */
function svgEl(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const hourLabel = (/** @type {string} */ iso) => iso.slice(11, 13);
const seconds = (/** @type {number | null} */ value) => (value === null ? 'none' : `${value.toFixed(1)} s`);
const niceMax = (/** @type {number} */ value) =>
  value <= 4
    ? 4
    : 10 ** Math.floor(Math.log10(value)) * Math.ceil(value / 10 ** Math.floor(Math.log10(value)));

/**
 * Axes, gridlines and hour labels shared by both charts; returns x and y scales.
 * @param {SVGSVGElement} svg @param {HourStats[]} hours @param {number} max @param {string} unit
 * @returns {{ x: Scale, y: Scale, slot: number }}
 */
function frame(svg, hours, max, unit) {
  const width = svg.viewBox.baseVal.width;
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (/** @type {number} */ i) => PAD.left + (plotW * i) / Math.max(hours.length, 1);
  const y = (/** @type {number} */ v) => PAD.top + plotH - (plotH * v) / max;
  for (const tick of [0, max / 2, max]) {
    svg.append(
      svgEl('line', { x1: PAD.left, x2: width - PAD.right, y1: y(tick), y2: y(tick), class: 'grid' }),
    );
    svg.append(
      svgEl(
        'text',
        { x: PAD.left - 4, y: y(tick) + 4, class: 'axis', 'text-anchor': 'end' },
        `${+tick.toFixed(1)}${unit}`,
      ),
    );
  }
  const step = Math.ceil(hours.length / 12);
  hours.forEach((hour, i) => {
    if (i % step === 0) {
      svg.append(
        svgEl(
          'text',
          { x: x(i + 0.5), y: HEIGHT - 6, class: 'axis', 'text-anchor': 'middle' },
          hourLabel(hour.start),
        ),
      );
    }
  });
  return { x, y, slot: plotW / Math.max(hours.length, 1) };
}

// Drawn at the width it is shown at, one unit a pixel, so its labels stay legible on a phone.
/** @param {string} label @param {HTMLElement} container */
function chart(label, container) {
  const width = Math.max(240, container.clientWidth || 560);
  return /** @type {SVGSVGElement} */ (
    svgEl('svg', {
      viewBox: `0 0 ${width} ${HEIGHT}`,
      role: 'img',
      'aria-label': label,
      class: 'chart',
    })
  );
}

/** @param {Stats} stats @param {HTMLElement} container */
function countsChart(stats, container) {
  const issued = stats.hours.reduce((n, h) => n + h.issued, 0);
  const revoked = stats.hours.reduce((n, h) => n + h.revoked, 0);
  const svg = chart(`Keys per hour: ${issued} issued, ${revoked} revoked`, container);
  const max = niceMax(Math.max(1, ...stats.hours.map((h) => Math.max(h.issued, h.revoked))));
  const { x, y, slot } = frame(svg, stats.hours, max, '');
  const bar = Math.max(1, slot / 2 - 1);
  stats.hours.forEach((hour, i) => {
    /** @type {[string, number, number][]} */
    const bars = [
      ['issued', hour.issued, 0],
      ['revoked', hour.revoked, bar],
    ];
    for (const [series, value, offset] of bars) {
      if (value === 0) continue;
      const rect = svgEl('rect', {
        x: x(i) + offset,
        y: y(value),
        width: bar,
        height: y(0) - y(value),
        class: `bar-${series}`,
      });
      rect.append(svgEl('title', {}, `${hourLabel(hour.start)}:00 UTC · ${value} ${series}`));
      svg.append(rect);
    }
  });
  return svg;
}

/** @param {Stats} stats @param {HTMLElement} container */
function latencyChart(stats, container) {
  const { p50Seconds, p99Seconds } = stats.latency;
  const svg = chart(`Revoke latency: p50 ${seconds(p50Seconds)}, p99 ${seconds(p99Seconds)}`, container);
  const max = niceMax(Math.max(1, ...stats.hours.map((h) => h.latencyP99Seconds ?? 0)));
  const { x, y } = frame(svg, stats.hours, max, 's');
  /** @type {['p50' | 'p99', 'latencyP50Seconds' | 'latencyP99Seconds'][]} */
  const lines = [
    ['p50', 'latencyP50Seconds'],
    ['p99', 'latencyP99Seconds'],
  ];
  for (const [series, field] of lines) {
    const points = stats.hours.flatMap((h, i) => {
      const value = h[field];
      return value === null ? [] : [`${x(i + 0.5)},${y(value)}`];
    });
    if (points.length > 1)
      svg.append(svgEl('polyline', { points: points.join(' '), class: `line-${series}` }));
    stats.hours.forEach((h, i) => {
      const value = h[field];
      if (value === null) return;
      const dot = svgEl('circle', { cx: x(i + 0.5), cy: y(value), r: 3, class: `dot-${series}` });
      dot.append(svgEl('title', {}, `${hourLabel(h.start)}:00 UTC · ${series} ${seconds(value)}`));
      svg.append(dot);
    });
  }
  return svg;
}

/**
 * The range of the filters' dates (whole UTC days), or the last 24 hours.
 * @param {{ from?: string, to?: string }} filters
 */
function statsRange(filters, now = new Date()) {
  const day = (/** @type {string} */ date) => Date.parse(`${date}T00:00:00Z`);
  const to = filters.to ? Math.min(day(filters.to) + 86_400_000, now.getTime()) : now.getTime();
  const from = filters.from ? day(filters.from) : to - 86_400_000;
  return { from: new Date(Math.min(from, to - 3_600_000)).toISOString(), to: new Date(to).toISOString() };
}

const RESIZE_DELAY_MS = 150;

export function createOverview() {
  /** @type {Stats | undefined} */
  let shown;
  const draw = (/** @type {Stats} */ stats) => {
    const counts = byId('overview-counts');
    const latency = byId('overview-latency');
    counts.replaceChildren(countsChart(stats, counts));
    latency.replaceChildren(latencyChart(stats, latency));
    byId('overview-latency-summary').textContent =
      `p50 ${seconds(stats.latency.p50Seconds)} · p99 ${seconds(stats.latency.p99Seconds)} over ${stats.latency.count} revoked`;
    byId('overview-range').textContent =
      `${stats.from.slice(0, 16).replace('T', ' ')} – ${stats.to.slice(0, 16).replace('T', ' ')} UTC`;
  };
  // The charts are drawn at their shown width, so a rotated phone or a resized window redraws them.
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let resizeTimer;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => shown && draw(shown), RESIZE_DELAY_MS);
  });
  return {
    /** @param {{ from?: string, to?: string }} filters @param {{ signal?: AbortSignal | undefined }} [options] */
    async show(filters, { signal } = {}) {
      /** @type {Stats} */
      const stats = await getJson(withQuery('/v1/stats', statsRange(filters)), { signal });
      shown = stats;
      draw(stats);
    },
  };
}
