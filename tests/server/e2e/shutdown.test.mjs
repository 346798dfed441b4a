// SIGTERM while a client is being answered: the server stops taking requests, the answer in
// flight runs to its end, and the process exits 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { client, eventually, requireEnvironment, startServer } from './harness.mjs';

const MODEL = 'syn-qwen2-vocab-Q4_K_M.gguf';
const env = requireEnvironment([MODEL]);

// True when the server refuses a new request: 503 while it drains, or no connection once closed.
async function refusesNewRequests(server) {
  try {
    const response = await fetch(`${server.baseURL}/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 1 }),
    });
    if (response.status !== 503) return false;
    assert.equal(typeof (await response.json()).error.message, 'string');
    return true;
  } catch {
    return true;  // connection refused or reset: the listener is closed
  }
}

test('SIGTERM: new requests refused, the streamed answer in flight finishes, exit 0', { timeout: 120000 }, async () => {
  const server = await startServer(env, ['-m', env.models[MODEL], '--parallel', '2', '-t', '1', '-c', '512']);
  const openai = client(env, server, 'unused');
  // 150 tokens take this model over a second, so the signal arrives in the middle.
  const stream = await openai.completions.create({
    model: MODEL, prompt: 'Once upon a time', max_tokens: 150, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = stream[Symbol.asyncIterator]();
  assert.equal((await chunks.next()).done, false);

  const exit = server.stop('SIGTERM', 60000);
  assert.ok(await eventually(() => refusesNewRequests(server), 5000), 'a new request was still served after SIGTERM');

  let finish = null;
  let usage = null;
  for (let step = await chunks.next(); !step.done; step = await chunks.next()) {
    finish = step.value.choices[0]?.finish_reason ?? finish;
    usage = step.value.usage ?? usage;
  }
  assert.equal(finish, 'length', 'the answer in flight ran to max_tokens');
  assert.equal(usage.completion_tokens, 150);
  assert.deepEqual(await exit, { code: 0, signal: null }, server.stderr());
  assert.match(server.stderr(), /shutting down/);
});
