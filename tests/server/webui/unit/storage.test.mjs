// Conversations kept in the browser's storage (lib/server/webui/js/storage.js), over a stand-in
// for localStorage and sessionStorage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConversationStore, loadApiKey, saveApiKey } from '../../../../lib/server/webui/js/storage.js';

function memoryStorage() {
  const map = new Map();
  return {
    get length() { return map.size; },
    key: (i) => [...map.keys()][i] ?? null,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => map.set(k, String(v)),
    removeItem: (k) => map.delete(k),
    map,
  };
}

test('saved conversations come back, newest first; removed ones do not', () => {
  const storage = memoryStorage();
  const store = createConversationStore(storage);
  store.save({ id: 'a', title: 'A', updatedAt: 1, messages: [] });
  store.save({ id: 'b', title: 'B', updatedAt: 3, messages: [{ role: 'user', content: 'x' }] });
  store.save({ id: 'c', title: 'C', updatedAt: 2, messages: [] });
  store.save({ id: 'a', title: 'A2', updatedAt: 4, messages: [] });  // saved again: replaced
  assert.deepEqual(store.list().map((c) => c.title), ['A2', 'B', 'C']);
  store.remove('b');
  assert.deepEqual(store.list().map((c) => c.id), ['a', 'c']);
});

test('entries that are not conversations are skipped, and other keys left alone', () => {
  const storage = memoryStorage();
  storage.setItem('slm.conversation.bad', '{');
  storage.setItem('slm.conversation.wrong', '{"id":5,"messages":[]}');
  storage.setItem('other.app', '{"id":"x","messages":[]}');
  const store = createConversationStore(storage);
  store.save({ id: 'ok', updatedAt: 0, messages: [] });
  assert.deepEqual(store.list().map((c) => c.id), ['ok']);
  assert.equal(storage.getItem('other.app'), '{"id":"x","messages":[]}');
});

test('the API key is kept and cleared', () => {
  const storage = memoryStorage();
  assert.equal(loadApiKey(storage), '');
  saveApiKey(storage, 'secret');
  assert.equal(loadApiKey(storage), 'secret');
  saveApiKey(storage, '');
  assert.equal(loadApiKey(storage), '');
  assert.equal(storage.length, 0);
});
