/**
 * The sidebar's Runs tab: the runs of the notebook's experiment as a live tree
 * (session → cell runs → trials), with a filter box (the search language of
 * `search_runs`), a key metric column, status badges and multi-select → Compare.
 */
import { Widget } from '@lumino/widgets';

import { ApiError } from './api';
import type { IPanelContext } from './context';
import { button, clear, h, message } from './dom';
import {
  Backoff,
  buildRunTree,
  formatDuration,
  formatMetric,
  IRunNode,
  MAX_COMPARE,
  metricKeys,
  pickKeyMetric,
  runsSignature,
  statusLabel,
  visibleRows
} from './model';
import type { IExperiment, IRunRow, IStatus } from './types';

/** Runs loaded per "page" (the tree needs parents and children together). */
const PAGE = 200;
const MAX_LOADED = 1000;
/** How often the notebook's experiment is looked up again once known (ms). */
const STATUS_EVERY = 15000;
/** `auto`: the notebook's experiment; `''`: every experiment; else an experiment id. */
type ExperimentChoice = 'auto' | string;

export class RunsTab extends Widget {
  private readonly backoff = new Backoff(1000, 10000, 1.5);
  private timer: number | null = null;
  private inFlight: AbortController | null = null;
  private experimentChoice: ExperimentChoice = 'auto';
  private experimentId: string | null = null;
  private experiments: IExperiment[] = [];
  private filter = '';
  private keyMetric: string | null = null;
  private keyMetricChosen = false;
  private runs: IRunRow[] = [];
  private signature = '';
  private hasMore = false;
  private limit = PAGE;
  private readonly expanded = new Map<string, boolean>();
  private readonly selected = new Set<string>();
  private lastUpdate = 0;
  private error: string | null = null;
  private storeExists = true;
  private loading = true;
  private focusedId: string | null = null;
  private busy = false;
  private lastStatus = 0;

  private readonly experimentSelect: HTMLSelectElement;
  private readonly filterInput: HTMLInputElement;
  private readonly filterError: HTMLElement;
  private readonly metricSelect: HTMLSelectElement;
  private readonly compareButton: HTMLButtonElement;
  private readonly liveLabel: HTMLElement;
  private readonly tree: HTMLElement;
  private readonly footer: HTMLElement;

  constructor(private readonly ctx: IPanelContext) {
    super();
    this.addClass('jp-nbmlops-runs');
    this.experimentSelect = h('select', {
      class: 'jp-nbmlops-select',
      attrs: { 'aria-label': 'Experiment' },
      on: { change: () => this.onExperiment() }
    });
    this.filterInput = h('input', {
      class: 'jp-nbmlops-input jp-nbmlops-filter',
      type: 'search',
      attrs: {
        placeholder: "filter: metrics.f1 > 0.8 and params.model = 'rf'",
        'aria-label': 'Filter runs (search_runs syntax)',
        spellcheck: 'false'
      },
      on: {
        keydown: (event: KeyboardEvent) => {
          if (event.key === 'Enter') {
            this.applyFilter();
          }
        }
      }
    });
    this.filterInput.addEventListener('search', () => this.applyFilter());
    this.filterError = h('div', { class: 'jp-nbmlops-filter-error', role: 'alert' });
    this.metricSelect = h('select', {
      class: 'jp-nbmlops-select',
      attrs: { 'aria-label': 'Key metric column' },
      on: {
        change: () => {
          this.keyMetric = this.metricSelect.value || null;
          this.keyMetricChosen = true;
          this.render();
        }
      }
    });
    this.compareButton = button('Compare', () => this.compare(), {
      class: 'jp-nbmlops-compare',
      title: `Compare the selected runs (2 to ${MAX_COMPARE})`
    });
    this.liveLabel = h('span', { class: 'jp-nbmlops-live', attrs: { 'aria-live': 'polite' } });
    this.tree = h('div', {
      class: 'jp-nbmlops-tree',
      role: 'tree',
      attrs: { 'aria-label': 'Runs', 'aria-multiselectable': 'true' },
      on: { keydown: (event: KeyboardEvent) => this.onTreeKey(event) }
    });
    this.footer = h('div', { class: 'jp-nbmlops-tree-footer' });
    const apply = button('Apply', () => this.applyFilter(), { title: 'Apply the filter' });
    const refresh = button('↻', () => this.poke(), {
      class: 'jp-nbmlops-icon-button',
      title: 'Refresh now',
      attrs: { 'aria-label': 'Refresh runs' }
    });
    this.node.appendChild(
      h(
        'div',
        { class: 'jp-nbmlops-toolbar' },
        h('label', { class: 'jp-nbmlops-field' }, 'Experiment ', this.experimentSelect),
        h('div', { class: 'jp-nbmlops-filter-row' }, this.filterInput, apply),
        this.filterError,
        h(
          'div',
          { class: 'jp-nbmlops-toolbar-row' },
          h('label', { class: 'jp-nbmlops-field' }, 'Key metric ', this.metricSelect),
          this.compareButton,
          refresh
        ),
        this.liveLabel
      )
    );
    this.node.appendChild(this.tree);
    this.node.appendChild(this.footer);
    this.updateCompareButton();
    this.render();
  }

  dispose(): void {
    this.stop();
    super.dispose();
  }

  // ------------------------------------------------------------------ context
  /** The notebook or store changed: follow its experiment again and reload. */
  reset(status: IStatus | null): void {
    this.experimentChoice = 'auto';
    this.experimentId = status?.notebook?.experiment_id ?? null;
    this.lastStatus = status ? Date.now() : 0;
    this.runs = [];
    this.signature = '';
    this.selected.clear();
    this.expanded.clear();
    this.limit = PAGE;
    this.keyMetricChosen = false;
    this.loading = true;
    this.updateCompareButton();
    this.render();
    void this.loadExperiments();
    this.poke();
  }

  /** While the notebook's kernel is busy, poll at the fast rate (runs appear within ~1 s). */
  setBusy(busy: boolean): void {
    const wasIdle = !this.busy;
    this.busy = busy;
    if (busy && wasIdle) {
      this.poke();
    }
  }

  /** Poll now and at the fast rate (a cell is executing or just ran). */
  poke(): void {
    this.backoff.reset();
    this.schedule(0);
  }

  stop(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    this.inFlight?.abort();
    this.inFlight = null;
  }

  private schedule(delay: number): void {
    if (this.isDisposed) {
      return;
    }
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.poll();
    }, delay);
  }

  private async loadExperiments(): Promise<void> {
    try {
      const page = await this.ctx.api.experiments();
      this.experiments = page.experiments;
    } catch {
      this.experiments = [];
    }
    this.renderExperiments();
  }

  private renderExperiments(): void {
    const select = this.experimentSelect;
    clear(select);
    const auto = this.experimentChoice === 'auto';
    const autoName = this.experiments.find(e => e.experiment_id === this.experimentId)?.name;
    select.appendChild(
      h(
        'option',
        { attrs: { value: 'auto' } },
        autoName ? `This notebook's (${autoName})` : "This notebook's"
      )
    );
    select.appendChild(h('option', { attrs: { value: '' } }, 'All experiments'));
    for (const experiment of this.experiments) {
      select.appendChild(h('option', { attrs: { value: experiment.experiment_id } }, experiment.name));
    }
    select.value = auto ? 'auto' : this.experimentChoice;
  }

  private onExperiment(): void {
    this.experimentChoice = this.experimentSelect.value as ExperimentChoice;
    if (this.experimentChoice !== 'auto') {
      this.experimentId = this.experimentChoice || null;
    }
    this.selected.clear();
    this.updateCompareButton();
    this.limit = PAGE;
    this.poke();
  }

  private applyFilter(): void {
    this.filter = this.filterInput.value.trim();
    this.limit = PAGE;
    this.poke();
  }

  // ------------------------------------------------------------------ polling
  private async poll(): Promise<void> {
    this.inFlight?.abort();
    const controller = new AbortController();
    this.inFlight = controller;
    let changed = false;
    try {
      // The notebook's experiment is looked up again when unknown (no run yet) and every
      // STATUS_EVERY ms, not on every poll (it is a search in the store).
      const stale = Date.now() - this.lastStatus > STATUS_EVERY;
      if (this.experimentChoice === 'auto' && (this.experimentId === null || stale)) {
        const status = await this.ctx.api.status(controller.signal);
        this.lastStatus = Date.now();
        this.storeExists = status.store.exists;
        const suggested = status.notebook?.experiment_id ?? null;
        if (suggested !== this.experimentId) {
          this.experimentId = suggested;
          void this.loadExperiments();
        }
      }
      const experiment = this.experimentChoice === 'auto' ? this.experimentId : this.experimentChoice;
      if (this.experimentChoice === 'auto' && experiment === null) {
        changed = this.update_([], false, true);
      } else {
        const page = await this.ctx.api.runs(
          {
            experiment: experiment || null,
            filter: this.filter,
            maxResults: this.limit
          },
          controller.signal
        );
        this.storeExists = page.store_exists;
        changed = this.update_(page.runs, page.next_page_token !== null, false);
      }
      this.filterError.textContent = '';
      this.error = null;
    } catch (error) {
      if (controller.signal.aborted) {
        return;
      }
      if (error instanceof ApiError && error.kind === 'invalid' && this.filter) {
        this.filterError.textContent = error.message;
      } else {
        this.error = error instanceof Error ? error.message : String(error);
      }
      this.loading = false;
      this.render();
    } finally {
      if (this.inFlight === controller) {
        this.inFlight = null;
      }
    }
    const hidden = !this.isVisible;
    const delay = this.busy ? this.backoff.reset() : this.backoff.next(changed);
    this.schedule(hidden ? Math.max(delay, 5000) : delay);
  }

  /** Take a new page of runs; returns whether anything visible changed. */
  private update_(runs: IRunRow[], more: boolean, noExperiment: boolean): boolean {
    this.lastUpdate = Date.now();
    const signature = runsSignature(runs) + (noExperiment ? '#none' : '');
    const changed = signature !== this.signature || this.loading;
    this.loading = false;
    this.runs = runs;
    this.hasMore = more;
    if (changed) {
      this.signature = signature;
      const known = new Set(runs.map(r => r.run_id));
      for (const id of [...this.selected]) {
        if (!known.has(id)) {
          this.selected.delete(id);
        }
      }
      if (!this.keyMetricChosen || !this.keyMetric) {
        this.keyMetric = pickKeyMetric(
          runs.filter(r => r.run_type !== 'session' && r.run_type !== 'parent'),
          this.keyMetric
        );
      }
      this.render();
    } else {
      this.renderLive();
    }
    return changed;
  }

  // ------------------------------------------------------------------ rendering
  private renderLive(): void {
    const n = this.runs.length;
    const when = this.lastUpdate ? new Date(this.lastUpdate).toLocaleTimeString() : '';
    this.liveLabel.textContent = this.lastUpdate ? `${n} run${n === 1 ? '' : 's'} · live · ${when}` : '';
  }

  private render(): void {
    this.renderMetricSelect();
    this.renderLive();
    const tree = this.tree;
    const hadFocus = tree.contains(document.activeElement);
    clear(tree);
    clear(this.footer);
    if (this.error) {
      tree.appendChild(message(`Could not load runs: ${this.error}`, 'error'));
    }
    if (this.loading) {
      tree.appendChild(message('Loading runs…', 'loading'));
      return;
    }
    if (!this.storeExists) {
      tree.appendChild(
        message(
          'No nbmlops store yet for this notebook. Run %load_ext nbmlops and %mlops autolog on in it: runs appear here as cells execute.'
        )
      );
      return;
    }
    if (this.runs.length === 0) {
      tree.appendChild(
        message(
          this.filter
            ? 'No runs match the filter.'
            : this.experimentChoice === 'auto' && this.experimentId === null
              ? 'No runs from this notebook yet. Run %load_ext nbmlops and %mlops autolog on: runs appear here as cells execute.'
              : 'No runs in this experiment yet.'
        )
      );
      return;
    }
    const header = h(
      'div',
      { class: 'jp-nbmlops-tree-header', attrs: { 'aria-hidden': 'true' } },
      h('span', { class: 'jp-nbmlops-col-name' }, 'Run'),
      h('span', { class: 'jp-nbmlops-col-status' }, 'Status'),
      h('span', { class: 'jp-nbmlops-col-metric' }, this.keyMetric ?? '')
    );
    tree.appendChild(header);
    const roots = buildRunTree(this.runs);
    for (const row of visibleRows(roots, this.expanded)) {
      tree.appendChild(this.renderRow(row.node, row.depth, row.expanded));
    }
    if (this.hasMore && this.limit < MAX_LOADED) {
      this.footer.appendChild(
        button('Load older runs', () => {
          this.limit = Math.min(MAX_LOADED, this.limit + PAGE);
          this.poke();
        })
      );
    } else if (this.hasMore) {
      this.footer.appendChild(message(`Showing the newest ${MAX_LOADED} runs; narrow with a filter.`));
    }
    if (hadFocus && this.focusedId) {
      const again = tree.querySelector<HTMLElement>(`[data-run-id="${this.focusedId}"]`);
      again?.focus();
    }
  }

  private renderMetricSelect(): void {
    const select = this.metricSelect;
    const keys = metricKeys(this.runs);
    const current = this.keyMetric ?? '';
    clear(select);
    select.appendChild(h('option', { attrs: { value: '' } }, '(none)'));
    for (const key of keys) {
      select.appendChild(h('option', { attrs: { value: key } }, key));
    }
    select.value = keys.includes(current) ? current : '';
  }

  private renderRow(node: IRunNode, depth: number, expanded: boolean): HTMLElement {
    const run = node.row;
    const hasChildren = node.children.length > 0;
    const checked = this.selected.has(run.run_id);
    const checkbox = h('input', {
      type: 'checkbox',
      class: 'jp-nbmlops-check',
      tabindex: -1,
      attrs: { 'aria-label': `Select ${run.name} for comparison` },
      on: {
        change: () => this.toggleSelected(run.run_id),
        click: (event: MouseEvent) => event.stopPropagation()
      }
    });
    checkbox.checked = checked;
    const twisty = h(
      'span',
      {
        class: `jp-nbmlops-twisty${hasChildren ? '' : ' jp-nbmlops-twisty-leaf'}`,
        attrs: { 'aria-hidden': 'true' },
        on: {
          click: (event: MouseEvent) => {
            event.stopPropagation();
            if (hasChildren) {
              this.toggleExpanded(run.run_id, expanded);
            }
          }
        }
      },
      hasChildren ? (expanded ? '▾' : '▸') : ''
    );
    const name = h(
      'span',
      {
        class: 'jp-nbmlops-run-name',
        title: `${run.name}${run.run_type ? ` · ${run.run_type} run` : ''} (${run.run_id})`
      },
      run.name
    );
    const cellLink =
      run.cell !== null && run.cell !== undefined
        ? h(
            'a',
            {
              class: 'jp-nbmlops-cell-link',
              title: 'Scroll the notebook to this cell',
              attrs: { href: '#', 'data-cell-id': run.cell_id ?? '' },
              on: {
                click: (event: MouseEvent) => {
                  event.preventDefault();
                  event.stopPropagation();
                  void this.goToCell(run);
                }
              }
            },
            `[${run.cell}]`
          )
        : null;
    const metric = this.keyMetric ? formatMetric(run.metrics[this.keyMetric]) : '';
    const row = h(
      'div',
      {
        class: `jp-nbmlops-tree-row${checked ? ' jp-mod-selected' : ''}`,
        role: 'treeitem',
        tabindex: 0,
        title: run.error ?? `${run.status} · ${formatDuration(run.start_time, run.end_time)}`,
        attrs: {
          'aria-level': String(depth + 1),
          'aria-selected': String(checked),
          'data-run-id': run.run_id,
          'data-run-name': run.name,
          ...(hasChildren ? { 'aria-expanded': String(expanded) } : {})
        },
        on: {
          click: () => this.ctx.openRun(run.run_id),
          focus: () => {
            this.focusedId = run.run_id;
          }
        }
      },
      indent(h('span', { class: 'jp-nbmlops-col-name' }, twisty, checkbox, name, cellLink), depth),
      h('span', { class: 'jp-nbmlops-col-status' }, statusBadge(run.status)),
      h('span', { class: 'jp-nbmlops-col-metric', title: this.keyMetric ?? '' }, metric)
    );
    return row;
  }

  private async goToCell(run: IRunRow): Promise<void> {
    try {
      const detail = await this.ctx.api.run(run.run_id);
      if (!detail.notebook_path) {
        this.error = 'the notebook of this run is outside the Jupyter server root';
        this.render();
        return;
      }
      await this.ctx.goToCell(detail.notebook_path, run.cell_id ?? null, run.cell);
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
      this.render();
    }
  }

  private toggleExpanded(runId: string, expanded: boolean): void {
    this.expanded.set(runId, !expanded);
    this.focusedId = runId;
    this.render();
  }

  private toggleSelected(runId: string): void {
    if (this.selected.has(runId)) {
      this.selected.delete(runId);
    } else {
      this.selected.add(runId);
    }
    this.updateCompareButton();
    this.render();
  }

  private updateCompareButton(): void {
    const n = this.selected.size;
    this.compareButton.textContent = n ? `Compare (${n})` : 'Compare';
    this.compareButton.disabled = n < 2 || n > MAX_COMPARE;
  }

  private compare(): void {
    const order = this.runs.map(r => r.run_id).filter(id => this.selected.has(id));
    if (order.length >= 2) {
      this.ctx.openCompare(order.reverse().slice(0, MAX_COMPARE));
    }
  }

  /** Arrow keys move between rows, Right/Left expand/collapse, Space selects, Enter opens. */
  private onTreeKey(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    const row = target.closest<HTMLElement>('.jp-nbmlops-tree-row');
    if (!row || target.tagName === 'INPUT') {
      return;
    }
    const runId = row.dataset.runId!;
    const rows = [...this.tree.querySelectorAll<HTMLElement>('.jp-nbmlops-tree-row')];
    const index = rows.indexOf(row);
    switch (event.key) {
      case 'ArrowDown':
        rows[Math.min(rows.length - 1, index + 1)]?.focus();
        break;
      case 'ArrowUp':
        rows[Math.max(0, index - 1)]?.focus();
        break;
      case 'ArrowRight':
        if (row.getAttribute('aria-expanded') === 'false') {
          this.toggleExpanded(runId, false);
        }
        break;
      case 'ArrowLeft':
        if (row.getAttribute('aria-expanded') === 'true') {
          this.toggleExpanded(runId, true);
        }
        break;
      case ' ':
        this.focusedId = runId;
        this.toggleSelected(runId);
        break;
      case 'Enter':
        this.ctx.openRun(runId);
        break;
      default:
        return;
    }
    event.preventDefault();
  }
}

/** A compact status badge (the full status in its title and accessible name). */
function statusBadge(status: string): HTMLElement {
  const label = statusLabel(status);
  return h(
    'span',
    { class: `jp-nbmlops-badge ${label.cls}`, title: status, attrs: { 'aria-label': status, 'data-status': status } },
    label.text
  );
}

function indent(element: HTMLElement, depth: number): HTMLElement {
  element.style.paddingLeft = `${depth * 14}px`;
  return element;
}
