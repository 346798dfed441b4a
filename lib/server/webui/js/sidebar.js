// The sidebar: the conversations kept in this browser, the open one marked; each can be opened,
// renamed in place and deleted.

import { button, make } from './dom.js';

function iconButton(icon, label, className, onClick) {
  const element = button(icon, className, onClick);
  element.title = label;
  element.setAttribute('aria-label', label);
  return element;
}

export function renderSidebar(list, conversations, currentId, actions) {
  const items = conversations.map((conversation) => {
    const item = make('li', conversation.id === currentId ? 'conversation current' : 'conversation');
    item.dataset.id = conversation.id;
    const title = button(conversation.title, 'title', () => actions.open(conversation.id));
    title.title = conversation.title;
    const rename = iconButton('✎', 'Rename', 'rename', () => {
      const input = make('input', 'rename-box');
      input.value = conversation.title;
      let done = false;
      const finish = (keep) => {
        if (done) return;
        done = true;
        if (keep && input.value.trim() !== '') actions.rename(conversation.id, input.value.trim());
        else actions.refresh();
      };
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') finish(true);
        else if (event.key === 'Escape') finish(false);
      });
      input.addEventListener('blur', () => finish(true));
      title.replaceWith(input);
      input.focus();
      input.select();
    });
    const remove = iconButton('×', 'Delete', 'delete', () => {
      // Two clicks: the first arms the button, so one slip deletes nothing.
      if (remove.dataset.armed) actions.remove(conversation.id);
      else {
        remove.dataset.armed = 'yes';
        remove.textContent = 'Delete?';
        setTimeout(() => { delete remove.dataset.armed; remove.textContent = '×'; }, 3000);
      }
    });
    item.append(title, rename, remove);
    return item;
  });
  list.replaceChildren(...items);
}
