// A side-by-side line diff (longest common subsequence), for campaign versions and the
// audit log's before/after.

import {h, tableWrap} from './dom.js';

/** diffLines compares two texts line by line and answers rows of the side-by-side view:
 * {kind: 'same' | 'changed' | 'removed' | 'added', left, right, leftNo, rightNo}. */
export function diffLines(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  // lcs[i][j] is the LCS length of x[i:] and y[j:].
  const lcs = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      ops.push({op: '=', i: i++, j: j++});
    } else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ops.push({op: '+', j: j++});
    } else {
      ops.push({op: '-', i: i++});
    }
  }
  // Pair each run of removals with the run of additions next to it as changed lines.
  const rows = [];
  for (let k = 0; k < ops.length;) {
    if (ops[k].op === '=') {
      rows.push({kind: 'same', left: x[ops[k].i], right: y[ops[k].j], leftNo: ops[k].i + 1, rightNo: ops[k].j + 1});
      k++;
      continue;
    }
    const del = [];
    const add = [];
    while (k < ops.length && ops[k].op !== '=') {
      (ops[k].op === '-' ? del : add).push(ops[k]);
      k++;
    }
    for (let p = 0; p < Math.max(del.length, add.length); p++) {
      const d = del[p];
      const a2 = add[p];
      let kind = 'changed';
      if (!d) kind = 'added';
      else if (!a2) kind = 'removed';
      rows.push({kind, left: d ? x[d.i] : null, right: a2 ? y[a2.j] : null,
        leftNo: d ? d.i + 1 : null, rightNo: a2 ? a2.j + 1 : null});
    }
  }
  return rows;
}

/** diffView shows two texts side by side, changed lines marked; leftTitle and
 * rightTitle head the columns. */
export function diffView(leftTitle, a, rightTitle, b) {
  const rows = diffLines(a, b);
  const changes = rows.filter((r) => r.kind !== 'same').length;
  const cell = (no, text, side, kind) => [
    h('td', {class: 'ln'}, no === null ? '' : String(no)),
    h('td', {class: `code ${side} ${kind}`}, text === null ? '' : h('code', null, text)),
  ];
  const mark = {same: ' ', changed: '~', removed: '-', added: '+'};
  return h('div', {class: 'diff'},
    h('p', {class: 'diff-summary', role: 'status'}, changes ? `${changes} changed line${changes === 1 ? '' : 's'}` : 'No differences'),
    tableWrap('Differences', h('table', {class: 'diff-table'},
      h('colgroup', null, h('col', {class: 'ln'}), h('col'), h('col', {class: 'ln'}), h('col')),
      h('thead', null, h('tr', null,
        h('th', {scope: 'col', colspan: '2'}, leftTitle),
        h('th', {scope: 'col', colspan: '2'}, rightTitle))),
      h('tbody', null, rows.map((r) => h('tr', {class: `row-${r.kind}`, title: r.kind === 'same' ? null : r.kind,
        dataset: {mark: mark[r.kind]}},
      cell(r.leftNo, r.left, 'left', r.kind), cell(r.rightNo, r.right, 'right', r.kind)))))));
}
