/**
 * The sidebar's Models tab: registered models → versions (with their source runs'
 * metric), aliases, set-alias / remove-alias / promote actions (each confirmed in a
 * dialog) and the model's audit log.
 */
import { Widget } from '@lumino/widgets';

import type { IPanelContext } from './context';
import { button, clear, h, message } from './dom';
import { askPromote, askSetAlias, confirmDeleteAlias, showReport } from './dialogs';
import { formatMetric, relativeTime } from './model';
import type { IModelView, IRegisteredModel } from './types';

export class ModelsTab extends Widget {
  private models: IRegisteredModel[] = [];
  private open: string | null = null;
  private view: IModelView | null = null;
  private metric: string | null = null;
  private loading = false;
  private error: string | null = null;
  private notice: string | null = null;
  private storeExists = true;
  private readonly list: HTMLElement;
  private readonly detail: HTMLElement;

  constructor(private readonly ctx: IPanelContext) {
    super();
    this.addClass('jp-nbmlops-models');
    const refresh = button('↻', () => void this.refresh(), {
      class: 'jp-nbmlops-icon-button',
      title: 'Refresh models',
      attrs: { 'aria-label': 'Refresh models' }
    });
    this.list = h('div', { class: 'jp-nbmlops-model-list', role: 'list', attrs: { 'aria-label': 'Registered models' } });
    this.detail = h('div', { class: 'jp-nbmlops-model-detail', attrs: { 'aria-live': 'polite' } });
    this.node.appendChild(h('div', { class: 'jp-nbmlops-toolbar-row' }, h('span', { class: 'jp-nbmlops-heading' }, 'Registered models'), refresh));
    this.node.appendChild(this.list);
    this.node.appendChild(this.detail);
  }

  /** Reload the model list (and the open model). */
  async refresh(): Promise<void> {
    this.loading = true;
    this.render();
    try {
      const page = await this.ctx.api.models();
      this.models = page.models;
      this.storeExists = page.store_exists;
      this.error = null;
      if (this.open && this.models.some(m => m.name === this.open)) {
        this.view = await this.ctx.api.model(this.open);
      } else {
        this.open = null;
        this.view = null;
      }
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.loading = false;
    this.render();
  }

  private async select(name: string): Promise<void> {
    if (this.open === name) {
      this.open = null;
      this.view = null;
      this.render();
      return;
    }
    this.open = name;
    this.view = null;
    this.notice = null;
    this.render();
    try {
      this.view = await this.ctx.api.model(name);
      this.metric = this.view.default_metric;
      this.error = null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.render();
  }

  private render(): void {
    clear(this.list);
    clear(this.detail);
    if (this.error) {
      this.list.appendChild(message(this.error, 'error'));
    }
    if (this.loading && !this.models.length) {
      this.list.appendChild(message('Loading models…', 'loading'));
      return;
    }
    if (!this.storeExists || !this.models.length) {
      this.list.appendChild(
        message('No registered models yet. Register one with %mlops register RUN_ID|last NAME.')
      );
      return;
    }
    for (const model of this.models) {
      const aliases = Object.entries(model.aliases).sort();
      const item = h(
        'button',
        {
          class: `jp-nbmlops-model-item${this.open === model.name ? ' jp-mod-selected' : ''}`,
          type: 'button',
          role: 'listitem',
          attrs: { 'aria-expanded': String(this.open === model.name), 'data-model': model.name },
          on: { click: () => void this.select(model.name) }
        },
        h('span', { class: 'jp-nbmlops-model-name' }, model.name),
        h('span', { class: 'jp-nbmlops-muted' }, model.latest_version ? ` v${model.latest_version}` : ' (no versions)'),
        ...aliases.map(([alias, version]) => h('span', { class: 'jp-nbmlops-chip' }, `@${alias}=v${version}`))
      );
      this.list.appendChild(item);
    }
    if (this.open) {
      this.detail.appendChild(this.view ? this.renderView(this.view) : message('Loading…', 'loading'));
    }
  }

  private renderView(view: IModelView): HTMLElement {
    const name = view.model.name;
    const keys = view.metric_keys;
    const metricSelect = h('select', {
      class: 'jp-nbmlops-select',
      attrs: { 'aria-label': 'Metric column' },
      on: {
        change: () => {
          this.metric = metricSelect.value || null;
          this.render();
        }
      }
    });
    for (const key of keys) {
      metricSelect.appendChild(h('option', { attrs: { value: key } }, key));
    }
    if (this.metric) {
      metricSelect.value = this.metric;
    }
    const rows = view.versions.map(row => {
      const v = row.version;
      const chips = v.aliases.map(alias =>
        h(
          'span',
          { class: 'jp-nbmlops-chip' },
          `@${alias}`,
          button('×', () => void this.deleteAlias(name, alias, v.version), {
            class: 'jp-nbmlops-chip-remove',
            title: `Remove alias @${alias}`,
            attrs: { 'aria-label': `Remove alias ${alias} from version ${v.version}` }
          })
        )
      );
      const runLink = row.run_name
        ? h(
            'a',
            {
              class: 'jp-nbmlops-ellipsis',
              attrs: { href: '#' },
              title: `Open run ${row.run_name} (${v.source_run_id}), ${row.run_status ?? ''}`,
              on: {
                click: (event: MouseEvent) => {
                  event.preventDefault();
                  this.ctx.openRun(v.source_run_id);
                }
              }
            },
            row.run_name
          )
        : h('span', { class: 'jp-nbmlops-muted' }, 'run deleted');
      const created = `created ${relativeTime(v.created_at)} by ${v.created_by}`;
      return h(
        'tr',
        { attrs: { 'data-version': String(v.version) } },
        h('td', { title: created }, h('div', { class: 'jp-nbmlops-version' }, `v${v.version}`), ...chips),
        h('td', { class: 'jp-nbmlops-num' }, this.metric ? formatMetric(row.metrics[this.metric]) : ''),
        h('td', {}, runLink),
        h(
          'td',
          { class: 'jp-nbmlops-actions' },
          button('Alias…', () => void this.setAlias(view, v.version), {
            attrs: { 'aria-label': `Set an alias on version ${v.version}` }
          }),
          button('Promote…', () => void this.promote(view, v.version), {
            attrs: { 'aria-label': `Promote version ${v.version}` }
          })
        )
      );
    });
    const versions = h(
      'table',
      { class: 'jp-nbmlops-table jp-nbmlops-versions' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Version'),
          h('th', {}, keys.length ? metricSelect : 'Metric'),
          h('th', {}, 'Source run'),
          h('th', {}, h('span', { class: 'jp-nbmlops-sr-only' }, 'Actions'))
        )
      ),
      h('tbody', {}, ...rows)
    );
    const events = [...view.history].reverse().map(e =>
      h(
        'li',
        {},
        h('span', { class: 'jp-nbmlops-muted', title: new Date(e.timestamp).toISOString() }, relativeTime(e.timestamp)),
        ' ',
        h('strong', {}, e.action),
        e.alias ? ` @${e.alias}` : '',
        e.version !== null ? ` v${e.version}` : '',
        e.from_value !== null || e.to_value !== null ? ` (${e.from_value ?? '–'} → ${e.to_value ?? '–'})` : '',
        h('span', { class: 'jp-nbmlops-muted' }, ` by ${e.user}`),
        e.reason ? h('div', { class: 'jp-nbmlops-reason' }, e.reason) : null
      )
    );
    const audit = h(
      'details',
      { class: 'jp-nbmlops-audit' },
      h('summary', {}, `Audit log (${view.history_total} events, newest first)`),
      h('ol', { class: 'jp-nbmlops-events' }, ...events)
    );
    return h(
      'div',
      { class: 'jp-nbmlops-model-view', attrs: { 'data-model': name } },
      h('h3', {}, name),
      view.model.description ? h('p', {}, view.model.description) : null,
      this.notice ? message(this.notice) : null,
      versions,
      audit
    );
  }

  private async setAlias(view: IModelView, version: number): Promise<void> {
    const name = view.model.name;
    const answer = await askSetAlias(name, version, view.model.aliases);
    if (!answer) {
      return;
    }
    try {
      this.view = await this.ctx.api.setAlias(name, answer.alias, version, answer.reason || undefined);
      this.notice = `@${answer.alias} now points at ${name} v${version}.`;
      this.error = null;
      await this.refresh();
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
      this.render();
    }
  }

  private async deleteAlias(name: string, alias: string, version: number): Promise<void> {
    if (!(await confirmDeleteAlias(name, alias, version))) {
      return;
    }
    try {
      this.view = await this.ctx.api.deleteAlias(name, alias);
      this.notice = `@${alias} removed from ${name}.`;
      this.error = null;
      await this.refresh();
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
      this.render();
    }
  }

  private async promote(view: IModelView, version: number): Promise<void> {
    const name = view.model.name;
    const request = await askPromote(name, version, view.metric_keys, this.metric ?? view.default_metric, view.model.aliases['champion']);
    if (!request) {
      return;
    }
    try {
      const reply = await this.ctx.api.promote(name, request);
      this.view = reply.model;
      this.notice = reply.decision.text;
      this.error = null;
      await showReport(reply.decision.promoted ? 'Promoted' : 'Not promoted', reply.decision.text, reply.decision.promoted);
      await this.refresh();
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
      this.render();
    }
  }
}
