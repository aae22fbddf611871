// A bar chart of one value per day, drawn as SVG (no library), with the numbers also in
// a table for screen readers and for copying.

import {h, svg, fmtNum, tableWrap, table} from './dom.js';

const W = 640;
const H = 220;
const M = {top: 12, right: 8, bottom: 28, left: 48};

/** axis picks gridlines for values up to max: a step of 1, 2 or 5 times a power of
 * ten (at least 1, the values being counts) and the top line, at most 4 steps up. */
function axis(max) {
  if (max <= 0) return {step: 1, top: 4};
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * p;
  for (const m of [1, 2, 5]) {
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  }
  step = Math.max(1, step);
  return {step, top: step * Math.ceil(max / step)};
}

/** barChart draws days ([{day, value}], oldest first) titled title; unit names a value
 * ("rewards"). kind picks the colour (a CSS class). */
export function barChart(title, days, unit, kind) {
  const {step: tick, top: max} = axis(Math.max(0, ...days.map((d) => d.value)));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const step = plotW / Math.max(days.length, 1);
  const barW = Math.max(2, step * 0.7);
  const total = days.reduce((s, d) => s + d.value, 0);
  const titleId = `chart-${kind}`;

  const grid = [];
  for (let v = 0; v <= max; v += tick) {
    const y = M.top + plotH - (v / max) * plotH;
    grid.push(svg('g', {class: 'grid'},
      svg('line', {x1: M.left, x2: W - M.right, y1: y, y2: y}),
      svg('text', {x: M.left - 6, y: y + 4, 'text-anchor': 'end'}, fmtNum(v))));
  }
  const bars = days.map((d, i) => {
    const bh = (d.value / max) * plotH;
    const x = M.left + i * step + (step - barW) / 2;
    return svg('rect', {class: `bar bar-${kind}`, x, y: M.top + plotH - bh, width: barW, height: Math.max(bh, d.value ? 1 : 0),
      'data-day': d.day, 'data-value': d.value},
    svg('title', null, `${d.day}: ${fmtNum(d.value)} ${unit}`));
  });
  const labels = days.map((d, i) => (i % 7 === days.length % 7 || i === days.length - 1 ?
    svg('text', {class: 'axis', x: M.left + i * step + step / 2, y: H - 8, 'text-anchor': 'middle'}, d.day.slice(5)) : null));

  const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': titleId},
    svg('title', {id: titleId}, `${title}: ${fmtNum(total)} ${unit} in ${days.length} days`),
    grid, bars, labels);
  return h('figure', {class: 'chart-box', dataset: {chart: kind}},
    h('figcaption', null, h('strong', null, title), ` · ${fmtNum(total)} ${unit} in ${days.length} days`),
    chart,
    h('details', null, h('summary', null, 'Show as a table'),
      tableWrap(title, table(title, ['Day (UTC)', unit], days.slice().reverse().map((d) =>
        h('tr', null, h('td', null, d.day), h('td', {class: 'num'}, fmtNum(d.value))))))));
}
