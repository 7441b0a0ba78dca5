/**
 * The left-sidebar MLOps panel: a status line (server extension, version, store with a
 * store picker) and two tabs, Runs and Models.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { ApiError } from './api';
import { API_VERSION, FRONTEND_VERSION, IPanelContext } from './context';
import { clear, h, message } from './dom';
import { versionProblem } from './model';
import { ModelsTab } from './modelsTab';
import { RunsTab } from './runsTab';
import type { IStatus, IStoreInfo } from './types';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
<g class="jp-icon3" fill="#616161"><path d="M4 19h16v2H4zM5 10h3v8H5zM10.5 5h3v13h-3zM16 13h3v5h-3z"/></g></svg>`;

export const mlopsIcon = new LabIcon({ name: 'nbmlops:sidebar', svgstr: ICON_SVG });

type TabName = 'runs' | 'models';

export class MlopsSidebar extends Panel {
  readonly runs: RunsTab;
  readonly models: ModelsTab;
  private status: IStatus | null = null;
  private stores: IStoreInfo[] = [];
  private tab: TabName = 'runs';
  private readonly statusLine: HTMLElement;
  private readonly storeSelect: HTMLSelectElement;
  private readonly tabButtons: Record<TabName, HTMLButtonElement>;
  private readonly panels: Record<TabName, Widget>;
  private notebook: string | null = null;

  constructor(private readonly ctx: IPanelContext) {
    super();
    this.id = 'nbmlops-sidebar';
    this.addClass('jp-nbmlops-sidebar');
    this.title.icon = mlopsIcon;
    this.title.caption = 'MLOps (nbmlops)';
    this.runs = new RunsTab(ctx);
    this.models = new ModelsTab(ctx);
    this.statusLine = h('div', { class: 'jp-nbmlops-status', attrs: { 'aria-live': 'polite' } });
    this.storeSelect = h('select', {
      class: 'jp-nbmlops-select jp-nbmlops-store-select',
      attrs: { 'aria-label': 'Store' },
      on: { change: () => this.onStore() }
    });
    const tab = (name: TabName, label: string) =>
      h(
        'button',
        {
          class: 'jp-nbmlops-tab',
          type: 'button',
          role: 'tab',
          id: `jp-nbmlops-tab-${name}`,
          attrs: { 'aria-controls': `jp-nbmlops-panel-${name}`, 'data-tab': name },
          on: {
            click: () => this.showTab(name),
            keydown: (event: KeyboardEvent) => {
              if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
                const other: TabName = name === 'runs' ? 'models' : 'runs';
                this.showTab(other);
                this.tabButtons[other].focus();
                event.preventDefault();
              }
            }
          }
        },
        label
      );
    this.tabButtons = { runs: tab('runs', 'Runs'), models: tab('models', 'Models') };
    this.panels = { runs: this.runs, models: this.models };
    for (const name of ['runs', 'models'] as TabName[]) {
      const panel = this.panels[name];
      panel.addClass('jp-nbmlops-tabpanel');
      panel.node.setAttribute('role', 'tabpanel');
      panel.node.id = `jp-nbmlops-panel-${name}`;
      panel.node.setAttribute('aria-labelledby', `jp-nbmlops-tab-${name}`);
    }
    this.addWidget(
      new Widget({
        node: h(
          'header',
          { class: 'jp-nbmlops-sidebar-header' },
          h('h2', {}, 'MLOps'),
          this.statusLine,
          h('label', { class: 'jp-nbmlops-field' }, 'Store ', this.storeSelect)
        )
      })
    );
    this.addWidget(
      new Widget({
        node: h(
          'div',
          { class: 'jp-nbmlops-tabs', role: 'tablist', attrs: { 'aria-label': 'MLOps views' } },
          this.tabButtons.runs,
          this.tabButtons.models
        )
      })
    );
    this.addWidget(this.runs);
    this.addWidget(this.models);
    this.showTab('runs');
  }

  private showTab(name: TabName): void {
    this.tab = name;
    for (const key of ['runs', 'models'] as TabName[]) {
      const active = key === name;
      this.tabButtons[key].setAttribute('aria-selected', String(active));
      this.tabButtons[key].tabIndex = active ? 0 : -1;
      this.tabButtons[key].classList.toggle('jp-mod-current', active);
      this.panels[key].setHidden(!active);
    }
    if (name === 'models') {
      void this.models.refresh();
    } else {
      this.runs.poke();
    }
  }

  /** Follow another notebook (path relative to the server root), or none. */
  setNotebook(path: string | null): void {
    if (path === this.notebook && this.status !== null) {
      return;
    }
    this.notebook = path;
    this.ctx.api.selection.notebook = path;
    void this.reload();
  }

  /** A cell was scheduled or finished: poll the runs now. */
  poke(): void {
    this.runs.poke();
  }

  /** The followed notebook's kernel started or stopped executing. */
  setBusy(busy: boolean): void {
    this.runs.setBusy(busy);
  }

  /** Reload status, the store list and both tabs. */
  async reload(): Promise<void> {
    clear(this.statusLine);
    this.statusLine.appendChild(message('Connecting…', 'loading'));
    try {
      this.status = await this.ctx.api.status();
    } catch (error) {
      this.status = null;
      clear(this.statusLine);
      const missing = error instanceof ApiError && error.kind === 'missing-server';
      this.statusLine.appendChild(
        message(
          missing
            ? 'The nbmlops server extension is not running. Install nbmlops in the Jupyter server’s environment (pip install nbmlops) and restart JupyterLab.'
            : `Cannot reach the nbmlops API: ${error instanceof Error ? error.message : String(error)}`,
          'error'
        )
      );
      this.node.classList.add('jp-nbmlops-unavailable');
      return;
    }
    this.node.classList.remove('jp-nbmlops-unavailable');
    this.renderStatus(this.status);
    void this.loadStores();
    this.runs.reset(this.status);
    if (this.tab === 'models') {
      void this.models.refresh();
    }
  }

  private renderStatus(status: IStatus): void {
    clear(this.statusLine);
    const problem = versionProblem(FRONTEND_VERSION, status.version, status.api_version, API_VERSION);
    if (problem) {
      this.statusLine.appendChild(message(problem, 'error'));
    }
    const store = status.store;
    this.statusLine.appendChild(
      h(
        'div',
        { class: 'jp-nbmlops-store-line', title: store.location },
        `nbmlops ${status.version} · ${store.kind} store ${store.label}${store.exists ? '' : ' (not created yet)'}`,
        store.origin === 'env' ? ' · from NBMLOPS_TRACKING_URI' : ''
      )
    );
  }

  private async loadStores(): Promise<void> {
    try {
      this.stores = (await this.ctx.api.stores()).stores;
    } catch {
      this.stores = [];
    }
    const select = this.storeSelect;
    clear(select);
    select.appendChild(h('option', { attrs: { value: '' } }, "Notebook's store (automatic)"));
    for (const store of this.stores) {
      select.appendChild(
        h('option', { attrs: { value: store.id }, title: store.location }, `${store.label}${store.exists ? '' : ' (empty)'}`)
      );
    }
    select.value = this.ctx.api.selection.store ?? '';
  }

  private onStore(): void {
    this.ctx.api.selection.store = this.storeSelect.value || null;
    void this.reload();
  }
}
