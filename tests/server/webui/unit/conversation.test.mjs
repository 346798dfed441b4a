// Conversations, their settings, the request they send, export and import
// (lib/server/webui/js/conversation.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as chat from '../../../../lib/server/webui/js/conversation.js';

function ids() {
  let next = 0;
  return () => `id-${(next += 1)}`;
}

test('a new conversation takes its title from the first message and sends the settings', () => {
  const conversation = chat.newConversation('c1', 100);
  chat.addUserMessage(conversation, '  Explain   paged attention\nin detail', 200);
  assert.equal(conversation.title, 'Explain   paged attention');
  assert.equal(conversation.updatedAt, 200);
  conversation.settings = { ...chat.DEFAULT_SETTINGS, systemPrompt: 'Be brief.', seed: 7, temperature: 0.2 };
  assert.deepEqual(chat.chatRequest(conversation, 'm.gguf'), {
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '  Explain   paged attention\nin detail' }],
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0.2,
    top_p: chat.DEFAULT_SETTINGS.topP,
    max_tokens: chat.DEFAULT_SETTINGS.maxTokens,
    model: 'm.gguf',
    seed: 7,
  });
});

test('long titles are cut; an empty first message leaves the default', () => {
  assert.equal(chat.titleFrom('x'.repeat(100)).length, 48);
  assert.equal(chat.titleFrom('   '), 'New chat');
});

test('settings are clamped, parsed from form strings, and fall back to defaults', () => {
  assert.deepEqual(chat.normalizeSettings({ temperature: '5', topP: -1, maxTokens: '12.6', seed: '', systemPrompt: 3 }),
                   { ...chat.DEFAULT_SETTINGS, temperature: 2, topP: 0, maxTokens: 13 });
  assert.deepEqual(chat.normalizeSettings({ temperature: 'NaN', seed: '42' }), { ...chat.DEFAULT_SETTINGS, seed: 42 });
  assert.deepEqual(chat.normalizeSettings(null), chat.DEFAULT_SETTINGS);
});

test('regenerate drops the last reply; edit replaces a user message and drops what followed', () => {
  const conversation = chat.newConversation('c', 0);
  chat.addUserMessage(conversation, 'one', 1);
  conversation.messages.push({ role: 'assistant', content: 'reply one' });
  chat.addUserMessage(conversation, 'two', 2);
  conversation.messages.push({ role: 'assistant', content: 'reply two' });
  assert.equal(chat.dropLastReply(conversation), true);
  assert.deepEqual(conversation.messages.map((m) => m.content), ['one', 'reply one', 'two']);
  assert.equal(chat.editUserMessage(conversation, 1, 'nope', 3), false);  // not a user message
  assert.equal(chat.editUserMessage(conversation, 0, 'uno', 3), true);
  assert.deepEqual(conversation.messages, [{ role: 'user', content: 'uno' }]);
  assert.equal(chat.dropLastReply(chat.newConversation('empty', 0)), false);
});

test('export then import gives the same messages under fresh ids', () => {
  const conversation = chat.newConversation('old', 5);
  chat.addUserMessage(conversation, 'hi', 6);
  conversation.messages.push({ role: 'assistant', content: '**hello**', reasoning: 'r', finish: 'stop', figures: { x: 1 } });
  const imported = chat.importConversations(chat.exportConversations([conversation]), ids(), 99);
  assert.equal(imported.length, 1);
  assert.equal(imported[0].id, 'id-1');
  assert.equal(imported[0].title, 'hi');
  assert.deepEqual(imported[0].messages, [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: '**hello**', reasoning: 'r', finish: 'stop', figures: null },
  ]);
});

test('import keeps only known fields of the right types', () => {
  const hostile = JSON.stringify([{
    id: 'x', title: { toString: 1 }, __proto__: { polluted: true }, settings: { temperature: 'hot', seed: 1e300 },
    messages: [{ role: 'system', content: 'ignored' }, { role: 'assistant', content: 5, onclick: 'x' },
               'junk', { role: 'user', content: '<script>alert(1)</script>' }],
  }, 'not a conversation']);
  const [conversation] = chat.importConversations(hostile, ids(), 1);
  assert.equal(conversation.title, 'Imported chat');
  assert.equal(conversation.settings.seed, Number.MAX_SAFE_INTEGER);
  assert.equal(conversation.settings.temperature, chat.DEFAULT_SETTINGS.temperature);
  assert.deepEqual(conversation.messages, [
    { role: 'assistant', content: '', reasoning: '', finish: 'stop', figures: null },
    { role: 'user', content: '<script>alert(1)</script>' },  // text; the page renders it as text
  ]);
  assert.equal({}.polluted, undefined);
});

test('import refuses what holds no conversation, with a message', () => {
  assert.throws(() => chat.importConversations('{', ids(), 0), /not JSON/);
  assert.throws(() => chat.importConversations('{"a":1}', ids(), 0), /expected/);
  assert.throws(() => chat.importConversations('[]', ids(), 0), /no conversation/);
});
