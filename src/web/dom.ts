// Building the page's elements: h('div', { class: 'x' }, child, ...) as the panels write it.

export type Child = Node | string | null | undefined | false;

/** A new element with attributes (class, id, style, data-*, ...) and children (falsy ones skipped). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
