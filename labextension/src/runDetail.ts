/**
 * A run's detail view in the main area: header and status, a link to the cell that made
 * the run, params, metrics with history charts, artifacts (images inline), the cell's
 * source code, data inputs, lineage (parents, children, registered versions, the cells
 * executed before it) and tags.
 */
import { Widget } from '@lumino/widgets';

import { lineChart } from './chart';
import type { IPanelContext } from './context';
import { append, badge, button, clear, h, kvTable, message, section } from './dom';
import { chartPoints, formatBytes, formatDuration, formatMetric, statusClass } from './model';
import type { IArtifact, IRunDetail, IRunRow } from './types';

/** Images shown inline (the rest are links), and their size cap. */
const MAX_IMAGES = 12;
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** Metric histories charted. */
const MAX_CHARTS = 12;

export class RunDetailView extends Widget {
  private readonly urls: string[] = [];
  private detail: IRunDetail | null = null;

  constructor(
    private readonly ctx: IPanelContext,
    readonly runId: string
  ) {
    super();
    this.addClass('jp-nbmlops-detail');
    this.node.tabIndex = -1;
    this.node.setAttribute('data-run-id', runId);
    void this.load();
  }

  dispose(): void {
    this.releaseUrls();
    super.dispose();
  }

  private releaseUrls(): void {
    for (const url of this.urls.splice(0)) {
      URL.revokeObjectURL(url);
    }
  }

  /** (Re)load the run and draw it. */
  async load(): Promise<void> {
    clear(this.node);
    this.node.appendChild(message('Loading run…', 'loading'));
    try {
      this.detail = await this.ctx.api.run(this.runId);
    } catch (error) {
      clear(this.node);
      this.node.appendChild(message(`Could not load run ${this.runId}: ${errorText(error)}`, 'error'));
      this.node.appendChild(button('Retry', () => void this.load()));
      return;
    }
    this.releaseUrls();
    this.render(this.detail);
  }

  private render(detail: IRunDetail): void {
    const { info, data } = detail.run;
    this.title.label = `Run ${info.run_name}`;
    this.title.caption = `${info.run_name} (${info.run_id})`;
    clear(this.node);
    const source = info.source;
    const cellButton =
      detail.notebook_path && (source.cell_id || source.execution_count !== null)
        ? button(
            `Go to cell [${source.execution_count ?? '?'}] in ${detail.notebook_path.split('/').pop()}`,
            () =>
              void this.ctx.goToCell(detail.notebook_path!, source.cell_id || null, source.execution_count),
            { class: 'jp-nbmlops-go-to-cell', title: 'Scroll the notebook to the cell that made this run' }
          )
        : null;
    const header = h(
      'header',
      { class: 'jp-nbmlops-detail-header' },
      h('h2', {}, info.run_name, ' ', badge(info.status, statusClass(info.status))),
      kvTable([
        ['Run id', h('code', {}, info.run_id)],
        ['Experiment', detail.experiment_name ?? info.experiment_id],
        ['Type', data.tags['nbmlops.run_type'] ?? ''],
        ['Started', new Date(info.start_time).toLocaleString()],
        ['Duration', formatDuration(info.start_time, info.end_time)],
        ['User', info.user]
      ]),
      h('div', { class: 'jp-nbmlops-toolbar-row' }, cellButton, button('Refresh', () => void this.load()))
    );
    this.node.appendChild(header);
    const error = data.tags['nbmlops.error'];
    if (error) {
      this.node.appendChild(message(error, 'error'));
    }
    this.node.appendChild(this.params(detail));
    this.node.appendChild(this.metrics(detail));
    this.node.appendChild(this.artifacts(detail));
    if (source.code) {
      this.node.appendChild(
        section('Source code', h('pre', { class: 'jp-nbmlops-code' }, h('code', {}, source.code)))
      );
    }
    if (detail.run.inputs.length) {
      this.node.appendChild(this.inputs(detail));
    }
    this.node.appendChild(this.lineage(detail));
    this.node.appendChild(this.tags(detail));
  }

  private params(detail: IRunDetail): HTMLElement {
    const params = Object.entries(detail.run.data.params).sort(([a], [b]) => a.localeCompare(b));
    if (!params.length) {
      return section('Parameters', message('No parameters.'));
    }
    return section('Parameters', kvTable(params.map(([k, v]) => [k, v]), 'jp-nbmlops-params'));
  }

  private metrics(detail: IRunDetail): HTMLElement {
    const metrics = Object.entries(detail.run.data.metrics)
      .filter(([key]) => !key.startsWith('nbmlops.'))
      .sort(([a], [b]) => a.localeCompare(b));
    const charts = h('div', { class: 'jp-nbmlops-charts' });
    const body = section(
      'Metrics',
      metrics.length
        ? kvTable(metrics.map(([k, v]) => [k, formatMetric(v)]), 'jp-nbmlops-metrics')
        : message('No metrics.'),
      charts
    );
    void this.loadCharts(detail, metrics.map(([k]) => k).slice(0, MAX_CHARTS), charts);
    return body;
  }

  private async loadCharts(detail: IRunDetail, keys: string[], target: HTMLElement): Promise<void> {
    const runId = detail.run.info.run_id;
    for (const key of keys) {
      try {
        const history = await this.ctx.api.metricHistory(runId, key, 500);
        if (history.total > 1) {
          const title = history.downsampled
            ? `${key} (${history.points.length} of ${history.total} points)`
            : key;
          target.appendChild(lineChart(title, [{ label: '', points: chartPoints(history.points) }]));
        }
      } catch (error) {
        target.appendChild(message(`${key}: ${errorText(error)}`, 'error'));
      }
    }
  }

  private artifacts(detail: IRunDetail): HTMLElement {
    const runId = detail.run.info.run_id;
    const files = detail.artifacts;
    if (!files.length) {
      return section('Artifacts', message('No artifacts.'));
    }
    const images = h('div', { class: 'jp-nbmlops-images' });
    const rows = files.map(file =>
      h(
        'tr',
        {},
        h('td', {}, file.path),
        h('td', { class: 'jp-nbmlops-num' }, formatBytes(file.size)),
        h('td', {}, file.inline ? file.content_type.split(';')[0] : 'download only'),
        h('td', {}, button('Download', () => void this.download(runId, file), { attrs: { 'aria-label': `Download ${file.path}` } }))
      )
    );
    const shown = files
      .filter(f => /\.(png|jpe?g)$/i.test(f.path) && f.size <= MAX_IMAGE_BYTES)
      .slice(0, MAX_IMAGES);
    for (const file of shown) {
      void this.showImage(runId, file, images);
    }
    const more = detail.artifacts_total - files.length;
    return section(
      'Artifacts',
      images,
      more > 0 ? message(`${more} more artifact${more === 1 ? '' : 's'} not listed here.`) : null,
      h(
        'table',
        { class: 'jp-nbmlops-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Path'), h('th', {}, 'Size'), h('th', {}, 'Type'), h('th', {}, ''))),
        h('tbody', {}, ...rows)
      )
    );
  }

  private async showImage(runId: string, file: IArtifact, target: HTMLElement): Promise<void> {
    try {
      const blob = await this.ctx.api.artifactBlob(runId, file.path);
      const url = URL.createObjectURL(blob);
      this.urls.push(url);
      const image = h('img', { class: 'jp-nbmlops-image', attrs: { alt: file.path, src: url } });
      target.appendChild(h('figure', {}, image, h('figcaption', {}, file.path)));
    } catch (error) {
      target.appendChild(message(`${file.path}: ${errorText(error)}`, 'error'));
    }
  }

  private async download(runId: string, file: IArtifact): Promise<void> {
    try {
      const blob = await this.ctx.api.artifactBlob(runId, file.path);
      const url = URL.createObjectURL(blob);
      const link = h('a', { attrs: { href: url, download: file.path.split('/').pop() ?? 'artifact' } });
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      this.node.appendChild(message(`${file.path}: ${errorText(error)}`, 'error'));
    }
  }

  private inputs(detail: IRunDetail): HTMLElement {
    const rows = detail.run.inputs.map(d =>
      h(
        'tr',
        {},
        h('td', {}, d.name),
        h('td', {}, d.context),
        h('td', { title: d.digest }, h('code', {}, d.digest.slice(0, 12))),
        h('td', {}, d.shape.join(' × ')),
        h('td', { title: Object.entries(d.schema).map(([c, t]) => `${c}: ${t}`).join('\n') }, `${Object.keys(d.schema).length} columns`)
      )
    );
    return section(
      'Inputs',
      h(
        'table',
        { class: 'jp-nbmlops-table' },
        h('thead', {}, h('tr', {}, ...['Name', 'Context', 'Digest', 'Shape', 'Schema'].map(t => h('th', {}, t)))),
        h('tbody', {}, ...rows)
      )
    );
  }

  private runLink(row: { run_id: string; name?: string; status?: string }): HTMLElement {
    return h(
      'li',
      {},
      h(
        'a',
        {
          attrs: { href: '#' },
          on: {
            click: (event: MouseEvent) => {
              event.preventDefault();
              this.ctx.openRun(row.run_id);
            }
          }
        },
        row.name ?? row.run_id.slice(0, 8)
      ),
      row.status ? badge(row.status, statusClass(row.status)) : null
    );
  }

  private lineage(detail: IRunDetail): HTMLElement {
    const body = section('Lineage');
    if (detail.parents.length) {
      append(body, h('h4', {}, 'Parents (innermost first)'), h('ul', {}, ...detail.parents.map(p => this.runLink(p))));
    }
    if (detail.children.length) {
      const kids = detail.children.map((c: IRunRow) => this.runLink({ run_id: c.run_id, name: c.name, status: c.status }));
      append(body, h('h4', {}, `Children${detail.more_children ? ' (first 200)' : ''}`), h('ul', {}, ...kids));
    }
    if (detail.versions.length) {
      append(
        body,
        h('h4', {}, 'Registered as'),
        h(
          'ul',
          {},
          ...detail.versions.map(v =>
            h('li', {}, `${v.name} v${v.version}`, ...v.aliases.map(a => h('span', { class: 'jp-nbmlops-chip' }, `@${a}`)))
          )
        )
      );
    }
    if (detail.model) {
      const model = detail.model;
      append(
        body,
        h('h4', {}, 'Logged model'),
        kvTable(
          ['path', 'flavor', 'class', 'format', 'sha256']
            .filter(k => model[k] !== undefined && model[k] !== null)
            .map(k => [k, String(model[k])])
        )
      );
    } else if (detail.model_error) {
      append(body, message(detail.model_error, 'error'));
    }
    if (detail.lineage?.cells.length) {
      const cells = detail.lineage.cells.map(cell => {
        const code = detail.lineage!.code[cell.code_sha256] ?? '';
        const first = code.split('\n').find(line => line.trim()) ?? '';
        return h('li', {}, h('code', {}, `[${cell.execution_count}]`), ' ', first);
      });
      append(
        body,
        h(
          'details',
          {},
          h('summary', {}, `Cells executed up to this run (${cells.length}, in execution order)`),
          h('ol', { class: 'jp-nbmlops-lineage' }, ...cells)
        )
      );
    }
    if (body.childNodes.length === 1) {
      append(body, message('No lineage recorded.'));
    }
    return body;
  }

  private tags(detail: IRunDetail): HTMLElement {
    const tags = Object.entries(detail.run.data.tags).sort(([a], [b]) => a.localeCompare(b));
    return h(
      'details',
      { class: 'jp-nbmlops-section' },
      h('summary', {}, `Tags (${tags.length})`),
      kvTable(tags.map(([k, v]) => [k, v.length > 500 ? `${v.slice(0, 500)}…` : v]))
    );
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
