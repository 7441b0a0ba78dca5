/**
 * Small SVG line charts (metric histories, comparison overlays), themed with CSS
 * variables so they follow JupyterLab's light and dark themes.
 */
import { bounds, formatMetric } from './model';

const SVG = 'http://www.w3.org/2000/svg';
/** Series colours come from CSS classes (`jp-nbmlops-series-N`), cycled. */
export const SERIES_COLORS = 8;

export interface ISeries {
  label: string;
  points: [number, number][];
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    element.setAttribute(key, String(value));
  }
  return element;
}

/** A line chart of one or more series (x = step); a legend below names the series. */
export function lineChart(title: string, series: ISeries[], width = 420, height = 180): HTMLElement {
  const figure = document.createElement('figure');
  figure.className = 'jp-nbmlops-chart';
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.appendChild(caption);
  const box = bounds(series.map(s => s.points));
  if (box === null) {
    const empty = document.createElement('div');
    empty.className = 'jp-nbmlops-message';
    empty.textContent = 'no finite values to chart';
    figure.appendChild(empty);
    return figure;
  }
  const pad = { left: 52, right: 8, top: 8, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const sx = (x: number) => pad.left + ((x - box.x0) / (box.x1 - box.x0)) * plotW;
  const sy = (y: number) => pad.top + (1 - (y - box.y0) / (box.y1 - box.y0)) * plotH;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width: '100%',
    role: 'img',
    'aria-label': `${title}: ${series.length} series`,
    class: 'jp-nbmlops-chart-svg'
  });
  root.appendChild(
    svg('rect', {
      x: pad.left,
      y: pad.top,
      width: plotW,
      height: plotH,
      class: 'jp-nbmlops-chart-frame'
    })
  );
  const labels: [number, number, string, string][] = [
    [pad.left - 4, pad.top + 10, formatMetric(box.y1), 'end'],
    [pad.left - 4, pad.top + plotH, formatMetric(box.y0), 'end'],
    [pad.left, height - 4, `step ${formatMetric(box.x0)}`, 'start'],
    [width - pad.right, height - 4, formatMetric(box.x1), 'end']
  ];
  for (const [x, y, text, anchor] of labels) {
    const label = svg('text', { x, y, 'text-anchor': anchor, class: 'jp-nbmlops-chart-label' });
    label.textContent = text;
    root.appendChild(label);
  }
  series.forEach((s, index) => {
    const cls = `jp-nbmlops-series jp-nbmlops-series-${index % SERIES_COLORS}`;
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      root.appendChild(svg('circle', { cx: sx(x), cy: sy(y), r: 3, class: cls }));
      return;
    }
    const path = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    root.appendChild(svg('polyline', { points: path, class: cls, fill: 'none' }));
  });
  figure.appendChild(root);
  if (series.length > 1 || series[0]?.label) {
    const legend = document.createElement('ul');
    legend.className = 'jp-nbmlops-legend';
    series.forEach((s, index) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = `jp-nbmlops-swatch jp-nbmlops-swatch-${index % SERIES_COLORS}`;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.label));
      legend.appendChild(item);
    });
    figure.appendChild(legend);
  }
  return figure;
}
