/**
 * The comparison view in the main area: the same content as the inline compare panel
 * (`nbmlops.display.model.Comparison`): metrics with the best value marked, params with
 * the differences first, metric overlays, code diffs against the first run, data inputs,
 * environment and tag differences.
 */
import { Widget } from '@lumino/widgets';

import { lineChart } from './chart';
import type { IPanelContext } from './context';
import { badge, button, clear, h, message, section } from './dom';
import { formatMetric, seriesPoints, statusClass } from './model';
import { errorText } from './runDetail';
import type { IComparison, IValueRow } from './types';

export class CompareView extends Widget {
  constructor(
    private readonly ctx: IPanelContext,
    readonly runIds: string[]
  ) {
    super();
    this.addClass('jp-nbmlops-compare-view');
    this.title.label = `Compare ${runIds.length} runs`;
    this.node.tabIndex = -1;
    void this.load();
  }

  async load(): Promise<void> {
    clear(this.node);
    this.node.appendChild(message('Comparing…', 'loading'));
    let comparison: IComparison;
    try {
      comparison = await this.ctx.api.compare(this.runIds);
    } catch (error) {
      clear(this.node);
      this.node.appendChild(message(`Could not compare: ${errorText(error)}`, 'error'));
      this.node.appendChild(button('Retry', () => void this.load()));
      return;
    }
    clear(this.node);
    this.render(comparison);
  }

  private headerCells(comparison: IComparison): HTMLElement[] {
    return comparison.runs.map(run =>
      h(
        'th',
        { attrs: { scope: 'col' } },
        h(
          'a',
          {
            attrs: { href: '#' },
            title: run.run_id,
            on: {
              click: (event: MouseEvent) => {
                event.preventDefault();
                this.ctx.openRun(run.run_id);
              }
            }
          },
          run.name
        ),
        ' ',
        badge(run.status, statusClass(run.status)),
        run.cell !== null ? h('span', { class: 'jp-nbmlops-muted' }, ` [${run.cell}]`) : null
      )
    );
  }

  private render(comparison: IComparison): void {
    const names = comparison.runs.map(r => r.name);
    this.node.appendChild(h('h2', {}, `Comparing ${names.length} runs`));
    const headers = () => h('tr', {}, h('th', {}, ''), ...this.headerCells(comparison));

    const metricRows = comparison.metrics.map(m =>
      h(
        'tr',
        { class: m.differs ? 'jp-nbmlops-differs' : '' },
        h('th', { attrs: { scope: 'row' }, title: `${m.direction === 'max' ? 'higher' : 'lower'} is better` }, `${m.key} ${m.direction === 'max' ? '↑' : '↓'}`),
        ...m.values.map((value, index) =>
          h(
            'td',
            { class: `jp-nbmlops-num${m.best.includes(index) ? ' jp-nbmlops-best' : ''}` },
            formatMetric(value),
            m.best.includes(index) && m.differs ? h('span', { class: 'jp-nbmlops-best-mark', title: 'best' }, ' ★') : null
          )
        )
      )
    );
    this.node.appendChild(
      section(
        'Metrics',
        metricRows.length
          ? h('table', { class: 'jp-nbmlops-table jp-nbmlops-compare-table' }, h('thead', {}, headers()), h('tbody', {}, ...metricRows))
          : message('No metrics.')
      )
    );

    const differ = comparison.params.filter(p => p.differs);
    const same = comparison.params.filter(p => !p.differs);
    this.node.appendChild(
      section(
        `Parameters (${differ.length} differ)`,
        differ.length ? this.valueTable(differ, headers()) : message('Every parameter is the same.'),
        same.length
          ? h('details', {}, h('summary', {}, `${same.length} identical parameter${same.length === 1 ? '' : 's'}`), this.valueTable(same, headers()))
          : null
      )
    );

    const charts = h('div', { class: 'jp-nbmlops-charts' });
    for (const [key, perRun] of Object.entries(comparison.histories)) {
      if (!perRun.some(([steps]) => steps.length > 1)) {
        continue;
      }
      charts.appendChild(
        lineChart(
          key,
          perRun.map(([steps, values], index) => ({ label: names[index], points: seriesPoints(steps, values) }))
        )
      );
    }
    if (charts.childNodes.length) {
      this.node.appendChild(section('Metric histories', charts));
    }

    const diffs = comparison.code_diffs.map(diff => {
      const title = `${names[diff.from_index]} → ${names[diff.to_index]}`;
      if (diff.missing) {
        return h('div', {}, h('h4', {}, title), message('One of the runs has no recorded code.'));
      }
      if (diff.identical) {
        return h('div', {}, h('h4', {}, title), message('Same code.'));
      }
      const lines = diff.lines.map(line => {
        const cls = line.startsWith('+') && !line.startsWith('+++')
          ? 'jp-nbmlops-diff-add'
          : line.startsWith('-') && !line.startsWith('---')
            ? 'jp-nbmlops-diff-del'
            : line.startsWith('@@')
              ? 'jp-nbmlops-diff-hunk'
              : '';
        return h('span', { class: `jp-nbmlops-diff-line ${cls}` }, line.replace(/\n$/, ''), '\n');
      });
      return h('div', {}, h('h4', {}, title), h('pre', { class: 'jp-nbmlops-code jp-nbmlops-diff' }, ...lines));
    });
    if (diffs.length) {
      this.node.appendChild(section('Code', ...diffs));
    }

    if (comparison.inputs.length) {
      const rows = comparison.inputs.map(input =>
        h(
          'tr',
          { class: input.digest_differs || input.shape_differs ? 'jp-nbmlops-differs' : '' },
          h('th', { attrs: { scope: 'row' } }, `${input.name} (${input.context})`),
          ...input.digests.map((digest, index) =>
            h('td', { title: digest ?? '' }, digest ? `${digest.slice(0, 10)} ${(input.shapes[index] ?? []).join('×')}` : '—')
          )
        )
      );
      this.node.appendChild(
        section('Data', h('table', { class: 'jp-nbmlops-table' }, h('thead', {}, headers()), h('tbody', {}, ...rows)))
      );
    }
    if (comparison.environment.length) {
      this.node.appendChild(section(`Environment (${comparison.environment_same} entries the same)`, this.valueTable(comparison.environment, headers())));
    }
    const tagsDiffer = comparison.tags.filter(t => t.differs);
    if (tagsDiffer.length) {
      this.node.appendChild(section('Tags that differ', this.valueTable(tagsDiffer, headers())));
    }
  }

  private valueTable(rows: IValueRow[], header: HTMLElement): HTMLElement {
    return h(
      'table',
      { class: 'jp-nbmlops-table jp-nbmlops-compare-table' },
      h('thead', {}, header),
      h(
        'tbody',
        {},
        ...rows.map(row =>
          h(
            'tr',
            { class: row.differs ? 'jp-nbmlops-differs' : '' },
            h('th', { attrs: { scope: 'row' } }, row.key),
            ...row.values.map(value => h('td', {}, value ?? '—'))
          )
        )
      )
    );
  }
}
