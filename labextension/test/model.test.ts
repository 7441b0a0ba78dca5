import { describe, expect, it } from 'vitest';

import {
  aliasProblem,
  Backoff,
  bounds,
  buildRunTree,
  chartPoints,
  formatBytes,
  formatDuration,
  formatMetric,
  metricKeys,
  pickKeyMetric,
  runsSignature,
  seriesPoints,
  statusClass,
  statusLabel,
  subtreeIds,
  toNumber,
  versionProblem,
  visibleRows
} from '../src/model';
import { row } from './fixtures';

describe('buildRunTree', () => {
  it('nests session → cells → trials, children oldest first, roots in server order', () => {
    const session = row({ run_id: 'a', run_type: 'session', start_time: 1 });
    const cell2 = row({ run_id: 'c', parent_run_id: session.run_id, start_time: 30 });
    const cell1 = row({ run_id: 'b', parent_run_id: session.run_id, start_time: 20 });
    const trial = row({ run_id: 'd', parent_run_id: cell1.run_id, run_type: 'trial', start_time: 25 });
    const other = row({ run_id: 'e', run_type: 'session', start_time: 100 });
    const roots = buildRunTree([other, cell2, trial, cell1, session]);
    expect(roots.map(n => n.row.run_id)).toEqual([other.run_id, session.run_id]);
    const sessionNode = roots[1];
    expect(sessionNode.children.map(n => n.row.run_id)).toEqual([cell1.run_id, cell2.run_id]);
    expect(sessionNode.children[0].children.map(n => n.row.run_id)).toEqual([trial.run_id]);
    expect(subtreeIds(sessionNode)).toEqual([session.run_id, cell1.run_id, trial.run_id, cell2.run_id]);
  });

  it('makes runs whose parent is not loaded roots, marked orphan', () => {
    const orphan = row({ run_id: 'f', parent_run_id: 'f'.repeat(32) });
    const [node] = buildRunTree([orphan]);
    expect(node.orphan).toBe(true);
  });

  it('never loops on a parent cycle', () => {
    const a = row({ run_id: '1a' });
    const b = row({ run_id: '1b', parent_run_id: a.run_id });
    a.parent_run_id = b.run_id;
    const roots = buildRunTree([a, b]);
    expect(roots.length).toBeGreaterThan(0);
    const shown = visibleRows(roots, new Map(), () => true);
    expect(shown.length).toBe(2);
  });
});

describe('visibleRows', () => {
  const session = row({ run_id: '2a', run_type: 'session' });
  const cell = row({ run_id: '2b', parent_run_id: session.run_id, run_type: 'cell' });
  const trial = row({ run_id: '2c', parent_run_id: cell.run_id, run_type: 'trial' });
  const roots = buildRunTree([session, cell, trial]);

  it('opens sessions and closes cells by default', () => {
    const shown = visibleRows(roots, new Map());
    expect(shown.map(r => [r.node.row.run_id, r.depth, r.expanded])).toEqual([
      [session.run_id, 0, true],
      [cell.run_id, 1, false]
    ]);
  });

  it('follows explicit expand/collapse choices', () => {
    const opened = visibleRows(roots, new Map([[cell.run_id, true]]));
    expect(opened.map(r => r.node.row.run_id)).toEqual([session.run_id, cell.run_id, trial.run_id]);
    const closed = visibleRows(roots, new Map([[session.run_id, false]]));
    expect(closed.map(r => r.node.row.run_id)).toEqual([session.run_id]);
    expect(closed[0].expanded).toBe(false);
  });
});

describe('key metric', () => {
  const runs = [
    row({ metrics: { f1: 0.8, loss: 0.2, 'nbmlops.internal': 1 } }),
    row({ metrics: { f1: 0.7 } }),
    row({ metrics: { accuracy: 0.9 } })
  ];

  it('picks the most common user metric, or the preferred one when present', () => {
    expect(pickKeyMetric(runs)).toBe('f1');
    expect(pickKeyMetric(runs, 'loss')).toBe('loss');
    expect(pickKeyMetric(runs, 'missing')).toBe('f1');
    expect(pickKeyMetric([])).toBeNull();
    const autologged = [
      row({ metrics: { training_accuracy_score: 0.9, f1_score_X_test: 0.8 } }),
      row({ metrics: { training_accuracy_score: 0.8, f1_score_X_test: 0.7 } })
    ];
    expect(pickKeyMetric(autologged)).toBe('f1_score_X_test');
  });

  it('lists metric keys without nbmlops internals', () => {
    expect(metricKeys(runs)).toEqual(['accuracy', 'f1', 'loss']);
  });
});

describe('formatting', () => {
  it('formats metric values including their JSON spellings of NaN and infinities', () => {
    expect(formatMetric(0.812345)).toBe('0.8123');
    expect(formatMetric(3)).toBe('3');
    expect(formatMetric(1234567.8)).toBe('1.235e+6');
    expect(formatMetric(0.00001234)).toBe('1.234e-5');
    expect(formatMetric('NaN')).toBe('NaN');
    expect(formatMetric('Infinity')).toBe('∞');
    expect(formatMetric('-Infinity')).toBe('−∞');
    expect(formatMetric(null)).toBe('');
    expect(formatMetric(undefined)).toBe('');
    expect(toNumber('Infinity')).toBe(Infinity);
    expect(Number.isNaN(toNumber('NaN'))).toBe(true);
  });

  it('formats durations, sizes and status classes', () => {
    expect(formatDuration(0, null)).toBe('running');
    expect(formatDuration(0, 1234)).toBe('1.2s');
    expect(formatDuration(0, 42_000)).toBe('42s');
    expect(formatDuration(0, 184_000)).toBe('3m04s');
    expect(formatDuration(0, 7_500_000)).toBe('2h05m');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 kB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MB');
    expect(statusClass('FAILED')).toBe('jp-nbmlops-status-failed');
    expect(statusClass('weird')).toBe('jp-nbmlops-status-unknown');
    expect(statusLabel('FINISHED')).toEqual({ text: 'done', cls: 'jp-nbmlops-status-finished' });
    expect(statusLabel('RUNNING').text).toBe('running');
  });
});

describe('charts', () => {
  it('drops non-finite points and pads flat bounds', () => {
    const points = chartPoints([
      { step: 0, value: 1, timestamp: 0 },
      { step: 1, value: 'NaN', timestamp: 0 },
      { step: 2, value: 'Infinity', timestamp: 0 },
      { step: 3, value: 1, timestamp: 0 }
    ]);
    expect(points).toEqual([
      [0, 1],
      [3, 1]
    ]);
    const box = bounds([points])!;
    expect(box.y0).toBeLessThan(1);
    expect(box.y1).toBeGreaterThan(1);
    expect(bounds([[]])).toBeNull();
    expect(seriesPoints([0, 1, 2], [0.5, 'NaN', 0.7])).toEqual([
      [0, 0.5],
      [2, 0.7]
    ]);
  });
});

describe('liveness', () => {
  it('changes the signature when status or metrics change, not otherwise', () => {
    const a = row({ run_id: '3a', status: 'RUNNING', metrics: { f1: 0.1 }, end_time: null });
    const same = runsSignature([a]);
    expect(runsSignature([{ ...a }])).toBe(same);
    expect(runsSignature([{ ...a, status: 'FINISHED' }])).not.toBe(same);
    expect(runsSignature([{ ...a, metrics: { f1: 0.2 } }])).not.toBe(same);
    expect(runsSignature([a, row()])).not.toBe(same);
  });

  it('backs off while nothing changes and resets on change or execution', () => {
    const backoff = new Backoff(1000, 5000, 2);
    expect(backoff.next(false)).toBe(2000);
    expect(backoff.next(false)).toBe(4000);
    expect(backoff.next(false)).toBe(5000);
    expect(backoff.next(false)).toBe(5000);
    expect(backoff.next(true)).toBe(1000);
    backoff.next(false);
    expect(backoff.reset()).toBe(1000);
    expect(backoff.current).toBe(1000);
  });
});

describe('versions and aliases', () => {
  it('accepts patch differences and flags API or minor mismatches', () => {
    expect(versionProblem('0.1.0', '0.1.3', 1, 1)).toBeNull();
    expect(versionProblem('0.1.0', '0.2.0', 1, 1)).toMatch(/differ/);
    expect(versionProblem('0.1.0', '0.1.0', 2, 1)).toMatch(/API v2/);
  });

  it('checks alias names like the registry does', () => {
    expect(aliasProblem('champion')).toBeNull();
    expect(aliasProblem('prod-2026')).toBeNull();
    expect(aliasProblem('')).toMatch(/needs a name/);
    expect(aliasProblem('latest')).toMatch(/reserved/);
    expect(aliasProblem('v3')).toMatch(/reserved/);
    expect(aliasProblem('../x')).toMatch(/letters/);
  });
});
