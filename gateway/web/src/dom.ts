// Building the page without ever parsing HTML: every element is made with
// createElement and every piece of text, user data above all, goes in as a
// text node. Nothing in the app assigns innerHTML.

type Child = Node | string | number | false | null | undefined;

export interface Attrs {
  readonly [name: string]: string | number | boolean | undefined | EventListener | Readonly<Record<string, string>>;
}

/**
 * `h("a", { class: "x", href: "#/" , onclick: fn }, "text", child)`. Attribute
 * values are set with setAttribute (false/undefined: left out); `on<event>`
 * keys add listeners; `dataset` sets data-* values.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset" && typeof value === "object") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Empties `el` and fills it with `children`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}
