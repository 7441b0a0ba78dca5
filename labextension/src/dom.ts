/**
 * Tiny DOM helpers. Text always goes in as text nodes (never `innerHTML`), so nothing a
 * run logged can become markup in the lab.
 */

export type Child = Node | string | number | null | undefined | false;

export interface IAttrs {
  class?: string;
  title?: string;
  role?: string;
  tabindex?: number;
  type?: string;
  id?: string;
  /** Other attributes (aria-*, data-*, value, placeholder, ...). */
  attrs?: Record<string, string>;
  on?: Partial<Record<keyof HTMLElementEventMap, (event: any) => void>>;
}

/** An element with attributes and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: IAttrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class) {
    element.className = props.class;
  }
  if (props.title) {
    element.title = props.title;
  }
  if (props.role) {
    element.setAttribute('role', props.role);
  }
  if (props.tabindex !== undefined) {
    element.tabIndex = props.tabindex;
  }
  if (props.type) {
    element.setAttribute('type', props.type);
  }
  if (props.id) {
    element.id = props.id;
  }
  for (const [key, value] of Object.entries(props.attrs ?? {})) {
    element.setAttribute(key, value);
  }
  for (const [event, handler] of Object.entries(props.on ?? {})) {
    if (handler) {
      element.addEventListener(event, handler as EventListener);
    }
  }
  append(element, ...children);
  return element;
}

/** Append children (strings as text). */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Remove every child. */
export function clear(element: Element): void {
  while (element.firstChild) {
    element.removeChild(element.firstChild);
  }
}

/** A button (keyboard accessible by nature). */
export function button(
  label: string,
  onClick: () => void,
  props: IAttrs = {}
): HTMLButtonElement {
  const cls = `jp-nbmlops-button ${props.class ?? ''}`.trim();
  return h('button', { ...props, class: cls, type: 'button', on: { click: onClick } }, label);
}

/** A status badge: colour and the status word (never colour alone). */
export function badge(text: string, cls: string): HTMLElement {
  return h('span', { class: `jp-nbmlops-badge ${cls}` }, text);
}

/** A two-column key/value table. */
export function kvTable(rows: [string, Child][], cls = ''): HTMLTableElement {
  return h(
    'table',
    { class: `jp-nbmlops-table jp-nbmlops-kv ${cls}`.trim() },
    h('tbody', {}, ...rows.map(([key, value]) => h('tr', {}, h('th', { attrs: { scope: 'row' } }, key), h('td', {}, value))))
  );
}

/** A section with a heading. */
export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'jp-nbmlops-section' }, h('h3', {}, title), ...children);
}

/** A message line: loading, empty, error. */
export function message(text: string, kind: 'info' | 'error' | 'loading' = 'info'): HTMLElement {
  return h(
    'div',
    {
      class: `jp-nbmlops-message jp-nbmlops-message-${kind}`,
      role: kind === 'error' ? 'alert' : 'status'
    },
    text
  );
}
