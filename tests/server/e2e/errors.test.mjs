// Every class of bad input answered with the right status and OpenAI's error object
// {"error": {"message", "type", "param", "code"}}, the typed error the `openai` client makes of
// it, and a server that is still healthy and serving afterwards.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import { client, healthStatus, requireEnvironment, startServer } from './harness.mjs';

const MODEL = 'syn-qwen2-vocab-Q4_K_M.gguf';
const KEY = 'e2e-errors-key';
const env = requireEnvironment([MODEL]);

let server;
let openai;
before(async () => {
  // One slot and no queue, so that one request in flight fills the server; a small context.
  server = await startServer(env, ['-m', env.models[MODEL], '--api-key', KEY, '--parallel', '1', '--queue', '0',
                                   '-t', '1', '-c', '128']);
  openai = client(env, server, KEY);
});
afterEach(async () => {
  assert.equal(await healthStatus(server), 200);
  const answer = await openai.completions.create({ model: MODEL, prompt: 'Still there?', max_tokens: 2 });
  assert.ok(answer.usage.completion_tokens >= 1, 'the server still answers');
});
after(async () => {
  assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.stderr());
});

// A raw request, for what the openai client cannot send; headers carry the key unless given.
function raw(path, { method = 'POST', body, headers = {} } = {}) {
  return fetch(`${server.url}${path}`, {
    method, body, headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers },
  });
}

async function assertErrorObject(response, status) {
  assert.equal(response.status, status);
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ['error']);
  const { message, type, param, code } = body.error;
  assert.ok(typeof message === 'string' && message.length > 0, JSON.stringify(body));
  assert.equal(typeof type, 'string');
  assert.ok(param === null || typeof param === 'string');
  assert.ok(code === null || typeof code === 'string');
  return body.error;
}

// The openai client's error for `promise`: its class, status and the param at fault.
async function assertClientError(promise, ErrorClass, status, param) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ErrorClass, `${error.constructor.name}: ${error.message}`);
    assert.equal(error.status, status);
    if (param !== undefined) assert.equal(error.param, param);
    return true;
  });
}

test('400: malformed JSON', async () => {
  const error = await assertErrorObject(await raw('/v1/chat/completions', { body: '{"model": "x", "messages": [' }), 400);
  assert.equal(error.type, 'invalid_request_error');
});

test('400: a field of the wrong type names the field', async () => {
  await assertClientError(openai.chat.completions.create({ model: MODEL, messages: 'hello' }),
                          env.OpenAI.BadRequestError, 400, 'messages');
  await assertClientError(openai.completions.create({ model: MODEL, prompt: 'x', temperature: 'hot' }),
                          env.OpenAI.BadRequestError, 400, 'temperature');
  await assertErrorObject(await raw('/v1/completions', { body: '{"prompt": "x", "max_tokens": "ten"}' }), 400);
});

test('400: a prompt longer than the context', async () => {
  await assertClientError(openai.completions.create({ model: MODEL, prompt: ' word'.repeat(400), max_tokens: 4 }),
                          env.OpenAI.BadRequestError, 400);
  await assertClientError(
    openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: ' word'.repeat(400) }] }),
    env.OpenAI.BadRequestError, 400);
});

test('400: max_tokens below 1', async () => {
  await assertClientError(openai.completions.create({ model: MODEL, prompt: 'x', max_tokens: 0 }),
                          env.OpenAI.BadRequestError, 400, 'max_tokens');
  await assertClientError(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }],
                                                           max_completion_tokens: -3 }),
                          env.OpenAI.BadRequestError, 400);
});

test('401: a wrong or missing key', async () => {
  await assertClientError(client(env, server, 'not-the-key').models.list(), env.OpenAI.AuthenticationError, 401);
  await assertErrorObject(await raw('/v1/models', { method: 'GET', headers: { Authorization: '' } }), 401);
});

test('404: an unknown route', async () => {
  await assertErrorObject(await raw('/v1/nowhere', { method: 'GET' }), 404);
  await assertClientError(openai.post('/no/such/route', { body: {} }), env.OpenAI.NotFoundError, 404);
});

test('413: a body over the 8 MiB limit', async () => {
  const body = JSON.stringify({ model: MODEL, prompt: 'x'.repeat(9 << 20) });
  await assertErrorObject(await raw('/v1/completions', { body }), 413);
});

test('503: the only slot busy and no queue, with Retry-After', async () => {
  const busy = await openai.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 100, stream: true });
  const iterator = busy[Symbol.asyncIterator]();
  await iterator.next();  // the request holds the slot now
  const refused = await raw('/v1/completions', { body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 2 }) });
  assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
  await assertErrorObject(refused, 503);
  await assertClientError(openai.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2 }),
                          env.OpenAI.InternalServerError, 503);
  let rest = 0;
  for (let step = await iterator.next(); !step.done; step = await iterator.next()) ++rest;
  assert.ok(rest >= 1, 'the busy request went on to its end');
});
