// Conversations kept in the browser: one localStorage entry per conversation, under a prefix.
// Nothing is stored on the server. Pure over a Storage-like object (getItem, setItem, removeItem,
// key, length), so node's test runner can hand it a stand-in.

const PREFIX = 'slm.conversation.';

export function createConversationStore(storage) {
  return {
    // Every stored conversation, the most recently updated first; entries that do not parse are
    // skipped (another page version, or a hand edit), not fatal.
    list() {
      const conversations = [];
      for (let i = 0; i < storage.length; i += 1) {
        const key = storage.key(i);
        if (!key || !key.startsWith(PREFIX)) continue;
        try {
          const conversation = JSON.parse(storage.getItem(key));
          if (conversation && typeof conversation.id === 'string' && Array.isArray(conversation.messages))
            conversations.push(conversation);
        } catch {
          // skipped
        }
      }
      return conversations.sort((a, b) => (b.updatedAt || 0) - (a.updatedAt || 0));
    },
    // Throws when the browser's quota is full (the caller tells the user).
    save(conversation) {
      storage.setItem(PREFIX + conversation.id, JSON.stringify(conversation));
    },
    remove(id) {
      storage.removeItem(PREFIX + id);
    },
  };
}

// The API key, kept for this browser tab's session only (sessionStorage), never in localStorage.
const KEY_ENTRY = 'slm.apiKey';

export function loadApiKey(storage) {
  return storage.getItem(KEY_ENTRY) || '';
}

export function saveApiKey(storage, key) {
  if (key) storage.setItem(KEY_ENTRY, key);
  else storage.removeItem(KEY_ENTRY);
}
