// Small DOM helpers shared by the views. Text is always set as text, never as HTML.

// A new element with a class and, when given, its text (always as text, never HTML).
export function make(tag, className, text) {
  const element = document.createElement(tag);
  element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

export function button(label, className, onClick) {
  const element = make('button', className, label);
  element.type = 'button';
  element.addEventListener('click', onClick);
  return element;
}
