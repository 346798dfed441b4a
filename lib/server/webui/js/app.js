// The chat page: state (the conversations, the open one, the reply streaming) and the wiring of
// the DOM to it. The logic that needs no browser lives in conversation.js, reply.js, sse.js and
// storage.js, which node's test runner covers.

import { ApiError, fetchModelName, streamChat } from './api.js';
import * as chat from './conversation.js';
import { renderMessages } from './messages_view.js';
import { applyChunk, newReply, replyFigures } from './reply.js';
import { renderSidebar } from './sidebar.js';
import { createConversationStore, loadApiKey, saveApiKey } from './storage.js';

const $ = (id) => document.getElementById(id);
const store = createConversationStore(window.localStorage);
const state = {
  conversations: store.list(),
  currentId: null,
  model: '',
  streaming: null,  // { controller, conversation } while a reply streams
  handles: new Map(),
};

const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`);
const current = () => state.conversations.find((c) => c.id === state.currentId) || null;

function status(text) {
  $('status').textContent = text;
}

function save(conversation) {
  try {
    store.save(conversation);
  } catch (error) {
    status(`Could not keep the conversation in this browser: ${error.message}`);
  }
}

// ---- API key -----------------------------------------------------------------------------

// Asks for the key in a dialog; resolves with it, or '' when cancelled.
function askForKey(message) {
  const dialog = $('key-dialog');
  $('key-message').textContent = message;
  $('key-input').value = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const key = dialog.returnValue === 'ok' ? $('key-input').value.trim() : '';
      saveApiKey(window.sessionStorage, key);
      resolve(key);
    }, { once: true });
    dialog.showModal();
  });
}

async function loadModelName() {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      state.model = await fetchModelName(loadApiKey(window.sessionStorage));
      $('model-name').textContent = state.model;
      return;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) {
        status(`The server did not answer /v1/models: ${error.message}`);
        return;
      }
      const key = await askForKey('This server wants an API key (slm-server --api-key). It is kept for this tab only.');
      if (!key) return;
    }
  }
}

// ---- rendering ---------------------------------------------------------------------------

const messageActions = {
  regenerate() {
    const conversation = current();
    if (!conversation || state.streaming || !chat.dropLastReply(conversation)) return;
    complete(conversation);
  },
  editAndResend(index, text) {
    const conversation = current();
    if (!conversation || state.streaming || text.trim() === '') return;
    if (chat.editUserMessage(conversation, index, text, Date.now())) complete(conversation);
  },
  rerender: () => renderConversation(),
};

function renderConversation() {
  const conversation = current();
  $('chat-title').textContent = conversation ? conversation.title : 'New chat';
  state.handles = conversation ? renderMessages($('messages'), conversation, messageActions) : new Map();
  if (!conversation) $('messages').replaceChildren();
  renderSettings();
  refreshSidebar();
}

function refreshSidebar() {
  renderSidebar($('conversation-list'), state.conversations, state.currentId, {
    open(id) {
      state.currentId = id;
      document.body.classList.remove('sidebar-open');
      renderConversation();
    },
    rename(id, title) {
      const conversation = state.conversations.find((c) => c.id === id);
      conversation.title = title;
      save(conversation);
      renderConversation();
    },
    remove(id) {
      if (state.streaming && state.streaming.conversation.id === id) state.streaming.controller.abort();
      store.remove(id);
      state.conversations = state.conversations.filter((c) => c.id !== id);
      if (state.currentId === id) state.currentId = null;
      renderConversation();
    },
    refresh: refreshSidebar,
  });
}

// ---- settings ----------------------------------------------------------------------------

const SETTING_FIELDS = { systemPrompt: 'set-system', temperature: 'set-temperature', topP: 'set-top-p',
                         maxTokens: 'set-max-tokens', seed: 'set-seed' };

function renderSettings() {
  const settings = chat.normalizeSettings(current() ? current().settings : chat.DEFAULT_SETTINGS);
  for (const [key, id] of Object.entries(SETTING_FIELDS)) $(id).value = settings[key] === null ? '' : settings[key];
}

function readSettings() {
  const given = {};
  for (const [key, id] of Object.entries(SETTING_FIELDS)) given[key] = $(id).value;
  return chat.normalizeSettings(given);
}

function ensureConversation() {
  let conversation = current();
  if (!conversation) {
    conversation = chat.newConversation(newId(), Date.now());
    conversation.settings = readSettings();
    state.conversations.unshift(conversation);
    state.currentId = conversation.id;
  }
  return conversation;
}

// ---- chatting ----------------------------------------------------------------------------

function setStreaming(streaming) {
  state.streaming = streaming;
  $('send').hidden = Boolean(streaming);
  $('stop').hidden = !streaming;
}

// Streams the reply to the conversation's last user message.
async function complete(conversation) {
  const body = chat.chatRequest(conversation, state.model);
  const reply = newReply();
  conversation.messages.push(reply);
  conversation.updatedAt = Date.now();
  save(conversation);
  renderConversation();
  const index = conversation.messages.length - 1;
  const controller = new AbortController();
  setStreaming({ controller, conversation });
  const clock = { startedAt: performance.now(), firstTextAt: null, endedAt: null };
  let redraw = 0;
  const draw = (final) => {
    const handle = state.currentId === conversation.id ? state.handles.get(index) : null;
    if (handle) handle.update(final);
  };
  for (let attempt = 0; ; attempt += 1) {
    try {
      await streamChat(body, {
        apiKey: loadApiKey(window.sessionStorage),
        signal: controller.signal,
        onChunk(chunk) {
          if (applyChunk(reply, chunk) && clock.firstTextAt === null) clock.firstTextAt = performance.now();
          if (!redraw) redraw = requestAnimationFrame(() => { redraw = 0; draw(false); });
        },
      });
      if (!reply.finish) reply.finish = 'stop';
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && attempt === 0 && !controller.signal.aborted) {
        const key = await askForKey('This server wants an API key (slm-server --api-key). It is kept for this tab only.');
        if (key) continue;
      }
      if (controller.signal.aborted) reply.finish = 'stopped';
      else reply.error = error.message || String(error);
      if (!reply.finish) reply.finish = 'error';
    }
    break;
  }
  if (redraw) cancelAnimationFrame(redraw);
  clock.endedAt = performance.now();
  reply.figures = replyFigures(reply.usage, clock);
  delete reply.usage;
  conversation.updatedAt = Date.now();
  save(conversation);
  setStreaming(null);
  draw(true);
  refreshSidebar();
}

function send() {
  const text = $('input').value;
  if (text.trim() === '' || state.streaming) return;
  const conversation = ensureConversation();
  chat.addUserMessage(conversation, text, Date.now());
  $('input').value = '';
  complete(conversation);
}

// ---- export and import -------------------------------------------------------------------

function exportAll() {
  const blob = new Blob([chat.exportConversations(state.conversations)], { type: 'application/json' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = 'slm-conversations.json';
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function importFile(file) {
  try {
    const imported = chat.importConversations(await file.text(), newId, Date.now());
    for (const conversation of imported) save(conversation);
    state.conversations = store.list();
    state.currentId = imported[0].id;
    renderConversation();
    status(`Imported ${imported.length} conversation${imported.length === 1 ? '' : 's'}.`);
  } catch (error) {
    status(`Import failed: ${error.message}`);
  }
}

// ---- wiring ------------------------------------------------------------------------------

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
$('input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$('stop').addEventListener('click', () => state.streaming && state.streaming.controller.abort());
$('new-chat').addEventListener('click', () => {
  state.currentId = null;
  document.body.classList.remove('sidebar-open');
  renderConversation();
  $('input').focus();
});
$('toggle-settings').addEventListener('click', () => { $('settings').hidden = !$('settings').hidden; });
$('settings').addEventListener('change', () => {
  const conversation = ensureConversation();
  conversation.settings = readSettings();
  save(conversation);
  renderConversation();
});
$('reset-settings').addEventListener('click', () => {
  const conversation = current();
  if (conversation) {
    conversation.settings = { ...chat.DEFAULT_SETTINGS };
    save(conversation);
  }
  renderConversation();
});
$('export').addEventListener('click', exportAll);
$('import-file').addEventListener('change', (event) => {
  const [file] = event.target.files;
  if (file) importFile(file);
  event.target.value = '';
});
$('open-sidebar').addEventListener('click', () => document.body.classList.add('sidebar-open'));
$('close-sidebar').addEventListener('click', () => document.body.classList.remove('sidebar-open'));

state.currentId = state.conversations.length > 0 ? state.conversations[0].id : null;
renderConversation();
loadModelName();
document.body.dataset.ready = 'yes';  // the browser test waits for it
