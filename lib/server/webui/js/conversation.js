// Conversations: their messages and settings, the request a conversation sends, and the JSON
// they are exported to and imported from. Pure: no DOM, no storage, no clock or randomness of its
// own (the caller passes ids and times), so that node's test runner covers it.

export const DEFAULT_SETTINGS = Object.freeze({
  systemPrompt: '',
  temperature: 0.8,
  topP: 0.95,
  maxTokens: 512,
  seed: null,  // null: the server picks (its --seed)
});

const SETTING_LIMITS = {
  temperature: [0, 2],
  topP: [0, 1],
  maxTokens: [1, 1 << 20],
  seed: [0, Number.MAX_SAFE_INTEGER],
};

// Settings made safe to send: every field present, numbers within range, others the default.
export function normalizeSettings(settings) {
  const given = settings && typeof settings === 'object' ? settings : {};
  const out = { ...DEFAULT_SETTINGS };
  if (typeof given.systemPrompt === 'string') out.systemPrompt = given.systemPrompt;
  for (const key of ['temperature', 'topP', 'maxTokens', 'seed']) {
    const value = given[key];
    if (key === 'seed' && (value === null || value === '')) continue;
    const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isFinite(number)) continue;
    const [low, high] = SETTING_LIMITS[key];
    const clamped = Math.min(high, Math.max(low, number));
    out[key] = key === 'maxTokens' || key === 'seed' ? Math.round(clamped) : clamped;
  }
  return out;
}

export function newConversation(id, now) {
  return { id, title: 'New chat', createdAt: now, updatedAt: now, settings: { ...DEFAULT_SETTINGS }, messages: [] };
}

// A title from the first user message: its first line, at most 48 characters.
export function titleFrom(text) {
  const line = String(text).trim().split('\n')[0].trim();
  if (line === '') return 'New chat';
  return line.length > 48 ? `${line.slice(0, 47)}…` : line;
}

export function addUserMessage(conversation, text, now) {
  if (conversation.messages.length === 0 && conversation.title === 'New chat') conversation.title = titleFrom(text);
  conversation.messages.push({ role: 'user', content: String(text) });
  conversation.updatedAt = now;
}

// Regenerate: drops the last assistant reply (and anything after the last user message), so the
// conversation ends with the user message to answer again. Returns false when there is none.
export function dropLastReply(conversation) {
  let last = conversation.messages.length - 1;
  while (last >= 0 && conversation.messages[last].role !== 'user') last -= 1;
  if (last < 0) return false;
  conversation.messages.length = last + 1;
  return true;
}

// Edit and resend: the user message at `index` gets `text`, and what followed it is dropped.
export function editUserMessage(conversation, index, text, now) {
  const message = conversation.messages[index];
  if (!message || message.role !== 'user') return false;
  message.content = String(text);
  conversation.messages.length = index + 1;
  conversation.updatedAt = now;
  return true;
}

// The body of POST /v1/chat/completions for the conversation as it stands.
export function chatRequest(conversation, model) {
  const settings = normalizeSettings(conversation.settings);
  const messages = [];
  if (settings.systemPrompt.trim() !== '') messages.push({ role: 'system', content: settings.systemPrompt });
  for (const message of conversation.messages) {
    if (message.role === 'user' || message.role === 'assistant')
      messages.push({ role: message.role, content: message.content });
  }
  const body = {
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: settings.temperature,
    top_p: settings.topP,
    max_tokens: settings.maxTokens,
  };
  if (model) body.model = model;
  if (settings.seed !== null) body.seed = settings.seed;
  return body;
}

// ---- export and import -------------------------------------------------------------------

export const EXPORT_FORMAT = 'slm-chat-conversations';

export function exportConversations(conversations) {
  return JSON.stringify({ format: EXPORT_FORMAT, version: 1, conversations }, null, 2);
}

const MAX_IMPORT_CONVERSATIONS = 10000;
const MAX_TEXT = 1 << 22;  // characters in one message

function text(value, fallback = '') {
  return typeof value === 'string' ? value.slice(0, MAX_TEXT) : fallback;
}

function importMessage(value) {
  if (!value || typeof value !== 'object') return null;
  if (value.role !== 'user' && value.role !== 'assistant') return null;
  const message = { role: value.role, content: text(value.content) };
  if (value.role === 'assistant') {
    message.reasoning = text(value.reasoning);
    message.finish = typeof value.finish === 'string' ? value.finish : 'stop';  // an imported reply is complete
    message.figures = null;  // figures are measured, not imported
  }
  return message;
}

// Conversations from exported JSON (a file's text), rebuilt field by field: only known fields,
// of the right types, are kept. Content is kept as text; the page renders it through the
// sanitizer like any reply. `makeId` gives each conversation a fresh id, so an import never
// overwrites a conversation already here. Throws an Error with a readable message.
export function importConversations(json, makeId, now) {
  let parsed;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`not JSON: ${error.message}`);
  }
  const list = Array.isArray(parsed) ? parsed
    : parsed && typeof parsed === 'object' && Array.isArray(parsed.conversations) ? parsed.conversations : null;
  if (!list) throw new Error('expected {"conversations": [...]} or an array of conversations');
  if (list.length > MAX_IMPORT_CONVERSATIONS) throw new Error(`more than ${MAX_IMPORT_CONVERSATIONS} conversations`);
  const out = [];
  for (const item of list) {
    if (!item || typeof item !== 'object' || !Array.isArray(item.messages)) continue;
    const conversation = newConversation(makeId(), now);
    conversation.title = text(item.title, 'Imported chat').slice(0, 200) || 'Imported chat';
    conversation.createdAt = Number.isFinite(item.createdAt) ? item.createdAt : now;
    conversation.updatedAt = Number.isFinite(item.updatedAt) ? item.updatedAt : now;
    conversation.settings = normalizeSettings(item.settings);
    conversation.messages = item.messages.map(importMessage).filter((message) => message !== null);
    out.push(conversation);
  }
  if (out.length === 0) throw new Error('no conversation in the file');
  return out;
}
