// Building the page without innerHTML: every text goes in as text, so nothing from the API can become markup.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'type', 'max', 'min', 'required',
  'multiple', 'readOnly', 'htmlFor', 'tabIndex']);

/** h('button', {class: 'x', onclick: f, 'aria-label': 'y'}, 'text', child…) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name === 'style') throw new Error('no inline styles: use a class');
    else if (PROPS.has(name)) el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let counter = 0;
/** A labelled control: [label, control] with the label's for pointing at the control. */
export function field(labelText, control, hint) {
  const id = control.id || `f${++counter}`;
  control.id = id;
  const parts = [h('label', {for: id, text: labelText}), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('small', {id: hintId, class: 'hint', text: hint}));
  }
  return h('div', {class: 'field'}, parts);
}

export function select(options, value) {
  const el = h('select');
  for (const [v, text] of options) el.append(h('option', {value: v, text, selected: v === value}));
  return el;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** A table (role table by its nature) with a caption, head and rows of cells (strings or nodes). */
export function table(caption, headings, rows, emptyText) {
  const body = h('tbody');
  for (const row of rows) body.append(h('tr', {}, row.map((cell) => h('td', {}, cell))));
  const t = h('table', {}, h('caption', {text: caption}),
    h('thead', {}, h('tr', {}, headings.map((x) => h('th', {scope: 'col', text: x})))), body);
  const wrap = h('div', {class: 'table-wrap'}, t);
  if (!rows.length && emptyText) wrap.append(h('p', {class: 'empty', text: emptyText}));
  return wrap;
}

/** Ask before something irreversible, in a modal dialog (Escape cancels). Resolves true or false. */
export function confirmDialog(question, confirmText = 'Delete') {
  return new Promise((resolve) => {
    const dialog = h('dialog', {'aria-labelledby': 'confirm-q'});
    const finish = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    const cancel = h('button', {type: 'button', text: 'Cancel', onclick: () => finish(false)});
    dialog.append(h('p', {id: 'confirm-q', text: question}),
      h('div', {class: 'actions'}, cancel,
        h('button', {type: 'button', class: 'danger', text: confirmText, onclick: () => finish(true)})));
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
