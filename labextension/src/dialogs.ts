/**
 * Confirmation dialogs with small forms (set alias, promote, export), built on
 * JupyterLab's `showDialog`: the dialog is the confirmation, nothing changes on Cancel.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { aliasProblem } from './model';
import type { IPromoteRequest } from './types';

/** A dialog body whose value is read when the user confirms. */
class FormBody<T> extends Widget {
  constructor(
    node: HTMLElement,
    private readonly read: () => T
  ) {
    super({ node });
    this.addClass('jp-nbmlops-form');
  }

  getValue(): T {
    return this.read();
  }
}

function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h(
    'label',
    { class: 'jp-nbmlops-form-field' },
    h('span', { class: 'jp-nbmlops-form-label' }, label),
    control,
    hint ? h('span', { class: 'jp-nbmlops-form-hint' }, hint) : null
  );
}

function input(value: string, attrs: Record<string, string> = {}): HTMLInputElement {
  const element = h('input', { class: 'jp-nbmlops-input', attrs });
  element.value = value;
  return element;
}

function checkbox(checked: boolean): HTMLInputElement {
  const element = h('input', { type: 'checkbox' });
  element.checked = checked;
  return element;
}

/** Ask for an alias (and a reason) to point at `version`; null when cancelled. */
export async function askSetAlias(
  model: string,
  version: number,
  current: Record<string, number>
): Promise<{ alias: string; reason: string } | null> {
  const alias = input('challenger', { 'aria-label': 'Alias', spellcheck: 'false' });
  const reason = input('', { 'aria-label': 'Reason (audit log)', placeholder: 'why (audit log)' });
  const problem = h('div', { class: 'jp-nbmlops-form-error', role: 'alert' });
  const moves = h('div', { class: 'jp-nbmlops-form-hint' });
  const explain = () => {
    const name = alias.value.trim();
    problem.textContent = aliasProblem(name) ?? '';
    const from = current[name];
    moves.textContent =
      from === undefined
        ? `@${name} will point at ${model} v${version}.`
        : from === version
          ? `@${name} already points at v${version}.`
          : `@${name} moves from v${from} to v${version}.`;
  };
  alias.addEventListener('input', explain);
  explain();
  const node = h(
    'div',
    {},
    h('p', {}, `Set an alias on ${model} v${version}. Aliases move: the alias leaves any other version.`),
    field('Alias', alias),
    problem,
    moves,
    field('Reason', reason)
  );
  const result = await showDialog({
    title: `Set alias on ${model} v${version}`,
    body: new FormBody(node, () => ({ alias: alias.value.trim(), reason: reason.value.trim() })),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Set alias' })],
    focusNodeSelector: 'input'
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  return result.value;
}

/** Confirm removing an alias. */
export async function confirmDeleteAlias(model: string, alias: string, version: number): Promise<boolean> {
  const result = await showDialog({
    title: `Remove @${alias}?`,
    body: `Remove alias @${alias} from ${model} v${version}? Code loading models:/${model}@${alias} will stop finding it.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove alias' })]
  });
  return result.button.accept;
}

/** Ask for the promotion rule's settings; null when cancelled. */
export async function askPromote(
  model: string,
  version: number,
  metrics: string[],
  defaultMetric: string | null,
  champion: number | undefined
): Promise<IPromoteRequest | null> {
  const metric = h('select', { class: 'jp-nbmlops-select', attrs: { 'aria-label': 'Metric' } });
  for (const key of metrics.length ? metrics : ['f1']) {
    metric.appendChild(h('option', { attrs: { value: key } }, key));
  }
  metric.value = defaultMetric && metrics.includes(defaultMetric) ? defaultMetric : metric.options[0].value;
  const alias = input('champion', { 'aria-label': 'Alias to promote to', spellcheck: 'false' });
  const minDelta = input('0', { 'aria-label': 'Minimum improvement', type: 'number', step: 'any', min: '0' });
  const lower = checkbox(false);
  const force = checkbox(false);
  const reason = input('', { 'aria-label': 'Reason (audit log)', placeholder: 'why (audit log)' });
  const who =
    champion === undefined
      ? 'There is no champion yet: the candidate takes the alias.'
      : `The current @champion is v${champion}; v${version} takes it only if strictly better by more than the minimum improvement.`;
  const node = h(
    'div',
    {},
    h('p', {}, who),
    field('Metric', metric),
    field('Alias', alias),
    field('Minimum improvement', minDelta),
    field('Lower is better', lower),
    field('Force (skip the comparison)', force),
    field('Reason', reason)
  );
  const result = await showDialog({
    title: `Promote ${model} v${version}`,
    body: new FormBody<IPromoteRequest>(node, () => ({
      version,
      metric: metric.value,
      alias: alias.value.trim() || 'champion',
      min_delta: Number(minDelta.value) || 0,
      greater_is_better: !lower.checked,
      force: force.checked,
      reason: reason.value.trim() || undefined
    })),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Promote' })]
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  return result.value;
}

/** Ask whether to verify an export; null when cancelled. */
export async function askExport(path: string): Promise<{ verify: boolean; force: boolean } | null> {
  const verify = checkbox(false);
  const force = checkbox(false);
  const node = h(
    'div',
    {},
    h('p', {}, `Export ${path} into a package (config, features.py, train.py, infer.py, tests) next to it.`),
    field('Verify (re-run the exported training and compare its metrics with the notebook’s)', verify),
    field('Replace an earlier export', force)
  );
  const result = await showDialog({
    title: 'Export notebook',
    body: new FormBody(node, () => ({ verify: verify.checked, force: force.checked })),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Export' })]
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  return result.value;
}

/** Show a text report (export, promotion decision) in a dialog. */
export async function showReport(title: string, text: string, ok: boolean): Promise<void> {
  const body = h(
    'div',
    { class: `jp-nbmlops-report ${ok ? 'jp-nbmlops-report-ok' : 'jp-nbmlops-report-failed'}` },
    h('pre', {}, text)
  );
  await showDialog({
    title,
    body: new Widget({ node: body }),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
