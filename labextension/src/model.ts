/**
 * Pure logic of the panels (no DOM, no JupyterLab): the run tree, key metrics, value
 * formatting, change detection and the polling backoff. Unit-tested in `test/`.
 */
import type { IMetricPoint, IRunRow, MetricValue, RunStatus } from './types';

/** Metrics nbmlops logs for its own bookkeeping; never a key column. */
export const INTERNAL_METRIC_PREFIX = 'nbmlops.';
/** Most runs a comparison takes (the server's bound). */
export const MAX_COMPARE = 20;

// ===================================================================== run tree

/** A run and its children (oldest first), as the sidebar's tree shows them. */
export interface IRunNode {
  row: IRunRow;
  children: IRunNode[];
  /** The run's parent is not among the loaded runs (older page, or filtered out). */
  orphan: boolean;
}

/**
 * The runs as a tree: roots keep the order of `runs` (newest first from the server),
 * children follow their parent ordered by start time (notebook execution order).
 * A run whose parent is not loaded becomes a root. Parent cycles cannot loop.
 */
export function buildRunTree(runs: IRunRow[]): IRunNode[] {
  const nodes = new Map<string, IRunNode>();
  for (const row of runs) {
    nodes.set(row.run_id, { row, children: [], orphan: false });
  }
  const roots: IRunNode[] = [];
  for (const row of runs) {
    const node = nodes.get(row.run_id)!;
    const parent = row.parent_run_id ? nodes.get(row.parent_run_id) : undefined;
    if (parent && !createsCycle(nodes, row)) {
      parent.children.push(node);
    } else {
      node.orphan = row.parent_run_id !== null && row.parent_run_id !== undefined;
      roots.push(node);
    }
  }
  for (const node of nodes.values()) {
    node.children.sort(
      (a, b) => a.row.start_time - b.row.start_time || a.row.run_id.localeCompare(b.row.run_id)
    );
  }
  return roots;
}

function createsCycle(nodes: Map<string, IRunNode>, row: IRunRow): boolean {
  const seen = new Set<string>([row.run_id]);
  let parent = row.parent_run_id;
  while (parent) {
    if (seen.has(parent)) {
      return true;
    }
    seen.add(parent);
    parent = nodes.get(parent)?.row.parent_run_id ?? null;
  }
  return false;
}

/** A tree row in display order. */
export interface IVisibleRow {
  node: IRunNode;
  depth: number;
  expanded: boolean;
}

/**
 * The rows to show: depth-first, skipping the children of collapsed nodes. A node is
 * expanded when `expanded` says so, else by `byDefault` (sessions and parents open,
 * cells with trials closed).
 */
export function visibleRows(
  roots: IRunNode[],
  expanded: Map<string, boolean>,
  byDefault: (node: IRunNode) => boolean = defaultExpanded
): IVisibleRow[] {
  const out: IVisibleRow[] = [];
  const walk = (node: IRunNode, depth: number): void => {
    const open = expanded.get(node.row.run_id) ?? byDefault(node);
    out.push({ node, depth, expanded: open && node.children.length > 0 });
    if (open) {
      for (const child of node.children) {
        walk(child, depth + 1);
      }
    }
  };
  for (const root of roots) {
    walk(root, 0);
  }
  return out;
}

/** Session and `%mlops start` runs start open; cell runs (their trials) start closed. */
export function defaultExpanded(node: IRunNode): boolean {
  const type = node.row.run_type;
  return type === 'session' || type === 'parent' || type === 'tuning';
}

/** Every run id in a subtree (the node first). */
export function subtreeIds(node: IRunNode): string[] {
  const ids = [node.row.run_id];
  for (const child of node.children) {
    ids.push(...subtreeIds(child));
  }
  return ids;
}

// ===================================================================== key metric

/**
 * The metric to show as the key column: `preferred` when some run has it, else the
 * metric most runs have (ties: evaluation metrics before `training_*`, then by name),
 * ignoring nbmlops' own metrics.
 */
export function pickKeyMetric(runs: IRunRow[], preferred?: string | null): string | null {
  const counts = new Map<string, number>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics)) {
      if (!key.startsWith(INTERNAL_METRIC_PREFIX)) {
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  if (preferred && counts.has(preferred)) {
    return preferred;
  }
  // Most common first; among equals, evaluation metrics before training_* ones, then by name.
  const ranked = [...counts.entries()].sort(
    ([a, n], [b, m]) =>
      m - n ||
      Number(a.startsWith('training_')) - Number(b.startsWith('training_')) ||
      a.localeCompare(b)
  );
  return ranked.length ? ranked[0][0] : null;
}

/** Every metric key of the runs, sorted, without nbmlops' own. */
export function metricKeys(runs: IRunRow[]): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics)) {
      if (!key.startsWith(INTERNAL_METRIC_PREFIX)) {
        keys.add(key);
      }
    }
  }
  return [...keys].sort();
}

// ===================================================================== values

/** A metric value as a number (NaN/±Infinity from their JSON spellings). */
export function toNumber(value: MetricValue | null | undefined): number {
  if (value === null || value === undefined) {
    return Number.NaN;
  }
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'Infinity') {
    return Number.POSITIVE_INFINITY;
  }
  if (value === '-Infinity') {
    return Number.NEGATIVE_INFINITY;
  }
  return Number.NaN;
}

/** `0.8123`, `1.23e+6`, `NaN`, `∞`, `−∞`; empty for a missing value. */
export function formatMetric(value: MetricValue | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  const n = toNumber(value);
  if (Number.isNaN(n)) {
    return 'NaN';
  }
  if (!Number.isFinite(n)) {
    return n > 0 ? '∞' : '−∞';
  }
  if (Number.isInteger(n) && Math.abs(n) < 1e9) {
    return String(n);
  }
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return n.toExponential(3);
  }
  return String(Number(n.toPrecision(4)));
}

/** `0.4s`, `12s`, `3m04s`, `2h05m`; `running` without an end. */
export function formatDuration(start: number, end: number | null): string {
  if (end === null) {
    return 'running';
  }
  const seconds = Math.max(0, (end - start) / 1000);
  if (seconds < 10) {
    return `${seconds.toFixed(1)}s`;
  }
  if (seconds < 60) {
    return `${Math.round(seconds)}s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  }
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** `just now`, `5 min ago`, `3 h ago`, else the date. */
export function relativeTime(ms: number, now: number = Date.now()): string {
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 45) {
    return 'just now';
  }
  if (seconds < 3600) {
    return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.round(seconds / 3600)} h ago`;
  }
  return new Date(ms).toISOString().slice(0, 10);
}

/** The CSS modifier of a status badge. */
export function statusClass(status: RunStatus | string | null | undefined): string {
  switch (status) {
    case 'RUNNING':
      return 'jp-nbmlops-status-running';
    case 'FINISHED':
      return 'jp-nbmlops-status-finished';
    case 'FAILED':
      return 'jp-nbmlops-status-failed';
    case 'KILLED':
      return 'jp-nbmlops-status-killed';
    default:
      return 'jp-nbmlops-status-unknown';
  }
}

/** Short badge text for the narrow sidebar (the full status goes in the title). */
export function statusLabel(status: RunStatus | string): { text: string; cls: string } {
  const text: Record<string, string> = {
    RUNNING: 'running',
    FINISHED: 'done',
    FAILED: 'failed',
    KILLED: 'killed'
  };
  return { text: text[status] ?? String(status).toLowerCase(), cls: statusClass(status) };
}

/** Bytes for people: `512 B`, `1.5 kB`, `3.2 MB`. */
export function formatBytes(size: number): string {
  if (size < 1024) {
    return `${size} B`;
  }
  const units = ['kB', 'MB', 'GB'];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

// ===================================================================== charts

/** Chartable `[x, y]` pairs: finite values only. */
export function chartPoints(points: IMetricPoint[]): [number, number][] {
  const out: [number, number][] = [];
  for (const point of points) {
    const y = toNumber(point.value);
    if (Number.isFinite(y)) {
      out.push([point.step, y]);
    }
  }
  return out;
}

/** Pairs from a comparison's `[steps, values]` series. */
export function seriesPoints(steps: number[], values: MetricValue[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < Math.min(steps.length, values.length); i++) {
    const y = toNumber(values[i]);
    if (Number.isFinite(y)) {
      out.push([steps[i], y]);
    }
  }
  return out;
}

/** The bounds of several series, padded so a flat line is still drawn. */
export function bounds(series: [number, number][][]): {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
} | null {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const points of series) {
    for (const [x, y] of points) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  if (!Number.isFinite(x0)) {
    return null;
  }
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  if (y0 === y1) {
    const pad = Math.abs(y0) * 0.05 || 1;
    y0 -= pad;
    y1 += pad;
  }
  return { x0, x1, y0, y1 };
}

// ===================================================================== liveness

/** A compact fingerprint of what the runs table shows; a change means "redraw". */
export function runsSignature(runs: IRunRow[]): string {
  return runs
    .map(r => {
      const metrics = Object.keys(r.metrics)
        .sort()
        .map(k => `${k}=${String(r.metrics[k])}`)
        .join(',');
      return `${r.run_id}:${r.status}:${r.end_time ?? ''}:${metrics}`;
    })
    .join('|');
}

/**
 * Polling delays: `min` while things change (or right after a cell ran), growing by
 * `factor` on every unchanged poll up to `max`; `reset()` goes back to fast polling.
 */
export class Backoff {
  private delay: number;

  constructor(
    readonly min = 1000,
    readonly max = 10000,
    readonly factor = 1.5
  ) {
    this.delay = min;
  }

  /** The delay before the next poll, given whether the last one saw a change. */
  next(changed: boolean): number {
    if (changed) {
      this.delay = this.min;
    } else {
      this.delay = Math.min(this.max, Math.round(this.delay * this.factor));
    }
    return this.delay;
  }

  /** Fast polling again (a cell started or finished executing). */
  reset(): number {
    this.delay = this.min;
    return this.delay;
  }

  get current(): number {
    return this.delay;
  }
}

// ===================================================================== versions

/**
 * `null` when the frontend and the server agree, else a sentence for the status bar.
 * Only major.minor must match (a patch release does not change the API).
 */
export function versionProblem(
  frontend: string,
  server: string,
  apiVersion: number,
  expectedApi: number
): string | null {
  if (apiVersion !== expectedApi) {
    return `the nbmlops server extension speaks API v${apiVersion}, this panel v${expectedApi}: install the same nbmlops version for JupyterLab and the server`;
  }
  const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');
  if (majorMinor(frontend) !== majorMinor(server)) {
    return `panel ${frontend} and server extension ${server} differ: reinstall nbmlops and restart JupyterLab`;
  }
  return null;
}

/** An alias name the registry accepts (letters, digits, `_`, `-`; not `latest`, not `v3`). */
export function aliasProblem(alias: string): string | null {
  const text = alias.trim();
  if (!text) {
    return 'an alias needs a name';
  }
  if (!/^[\w-]+$/.test(text)) {
    return 'aliases use letters, digits, _ and - only';
  }
  if (text === 'latest') {
    return "'latest' is reserved (it always means the newest version)";
  }
  if (/^[vV]\d+$/.test(text)) {
    return 'version-like names such as v3 are reserved';
  }
  return null;
}
