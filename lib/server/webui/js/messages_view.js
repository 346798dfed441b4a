// The messages of the open conversation as DOM: user messages as plain text with an Edit button,
// replies as sanitized markdown (markdown.js) with their reasoning apart and collapsed, a Copy
// button, Regenerate on the last one, and the figures under each.

import { button, make } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { formatFigures } from './reply.js';

// Copies text to the clipboard; the button says whether it worked.
export async function copyText(text, feedbackButton) {
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch {
    // The clipboard API needs a secure context (loopback is one; a LAN address over http is not).
    const area = document.createElement('textarea');
    area.value = text;
    document.body.append(area);
    area.select();
    copied = document.execCommand('copy');
    area.remove();
  }
  if (feedbackButton) {
    const label = feedbackButton.textContent;
    feedbackButton.textContent = copied ? 'Copied' : 'Copy failed';
    setTimeout(() => { feedbackButton.textContent = label; }, 1200);
  }
}

function userMessage(message, index, actions) {
  const element = make('div', 'message user');
  const body = make('div', 'body', message.content);
  const bar = make('div', 'actions');
  bar.append(button('Edit', 'edit', () => {
    const editor = make('textarea', 'edit-box');
    editor.value = message.content;
    const save = button('Save & send', 'save-edit', () => actions.editAndResend(index, editor.value));
    const cancel = button('Cancel', 'cancel-edit', () => actions.rerender());
    body.replaceChildren(editor);
    bar.replaceChildren(save, cancel);
    editor.focus();
  }));
  element.append(body, bar);
  return element;
}

// The state a reply shows: streaming, done, stopped or error (the browser test waits on it).
function replyState(message) {
  if (message.error) return 'error';
  if (message.finish === 'stopped') return 'stopped';
  return message.finish ? 'done' : 'streaming';
}

// A reply's element; update(message, final) redraws it in place as the stream goes on.
export function replyElement(message, { isLast, actions }) {
  const element = make('div', 'message assistant');
  const reasoning = make('details', 'reasoning');
  const reasoningText = make('div', 'reasoning-text');
  reasoning.append(make('summary', '', 'Reasoning'), reasoningText);
  const body = make('div', 'body markdown');
  const error = make('div', 'error');
  const figures = make('div', 'figures');
  const bar = make('div', 'actions');
  const copy = button('Copy', 'copy-reply', () => copyText(message.content, copy));
  bar.append(copy);
  if (isLast) bar.append(button('Regenerate', 'regenerate', () => actions.regenerate()));
  element.append(reasoning, body, error, figures, bar);

  const update = (final) => {
    const state = replyState(message);
    element.dataset.state = final ? state : 'streaming';
    reasoning.hidden = message.reasoning === '';
    reasoningText.textContent = message.reasoning;  // plain text: never HTML
    renderMarkdown(body, message.content, { final, copyText });
    error.hidden = !message.error;
    error.textContent = message.error || '';
    const stopped = message.finish === 'stopped' ? 'stopped · ' : message.finish === 'length' ? 'max tokens · ' : '';
    figures.textContent = final ? stopped + formatFigures(message.figures) : '';
    bar.hidden = !final;
  };
  update(true);
  return { element, update };
}

// Redraws the whole list; returns the reply elements' handles by message index.
export function renderMessages(container, conversation, actions) {
  const handles = new Map();
  const elements = [];
  const lastIndex = conversation.messages.length - 1;
  conversation.messages.forEach((message, index) => {
    if (message.role === 'user') {
      elements.push(userMessage(message, index, actions));
    } else {
      const handle = replyElement(message, { isLast: index === lastIndex, actions });
      handles.set(index, handle);
      elements.push(handle.element);
    }
  });
  container.replaceChildren(...elements);
  return handles;
}
