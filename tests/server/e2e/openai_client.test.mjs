// slm-server as the official `openai` npm client sees it: models, chat and completions, whole
// and streamed, usage, logprobs, the API key; and greedy and seeded answers equal to slm-chat's
// for the same message (same chat template, same sampler chain).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { client, requireEnvironment, slmChatReply, startServer } from './harness.mjs';

const MODEL = 'syn-qwen2-vocab-Q4_K_M.gguf';  // the Qwen2.5 tokenizer and chat template, random weights
const KEY = 'e2e-secret-key';
const env = requireEnvironment([MODEL]);
const CONTEXT = 512;

let server;
let openai;
before(async () => {
  server = await startServer(env, ['-m', env.models[MODEL], '--api-key', KEY, '--parallel', '4', '-t', '1',
                                   '-c', String(CONTEXT)]);
  openai = client(env, server, KEY);
});
after(async () => {
  const exit = await server.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
});

// slm-chat one-shot with the same context, threads and sampling as the request.
function slmChat(message, maxTokens, sampling) {
  return slmChatReply(env, ['-m', env.models[MODEL], '-p', message, '-n', String(maxTokens), '-c', String(CONTEXT),
                            '-t', '1', '--temp', String(sampling.temperature), '--top-k', String(sampling.top_k),
                            '--top-p', String(sampling.top_p), '--min-p', String(sampling.min_p),
                            '-s', String(sampling.seed)]);
}

test('models.list names the served file', async () => {
  const ids = [];
  for await (const model of openai.models.list()) ids.push(model.id);
  assert.deepEqual(ids, [MODEL]);
});

test('a chat completion: one assistant message, a finish reason, exact usage', async () => {
  const completion = await openai.chat.completions.create({
    model: 'any-name-is-accepted', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 12, temperature: 0,
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices.length, 1);
  const [choice] = completion.choices;
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(['stop', 'length'].includes(choice.finish_reason), choice.finish_reason);
  assert.ok(completion.usage.completion_tokens >= 1 && completion.usage.completion_tokens <= 12);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
});

test('greedy chat equals slm-chat --temp 0 for the same message', async () => {
  const sampling = { temperature: 0, top_k: 40, top_p: 0.95, min_p: 0.05, seed: 1 };
  const message = 'Write a short poem about the sea.';
  const completion = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: message }], max_tokens: 24, ...sampling,
  });
  assert.equal(completion.choices[0].message.content, await slmChat(message, 24, sampling));
});

test('seeded chat equals slm-chat with the same seed and sampler settings, and repeats', async () => {
  const sampling = { temperature: 0.9, top_k: 40, top_p: 0.95, min_p: 0.05, seed: 42 };
  const message = 'Tell me about your day.';
  const request = { model: MODEL, messages: [{ role: 'user', content: message }], max_tokens: 24, ...sampling };
  const first = await openai.chat.completions.create(request);
  const second = await openai.chat.completions.create(request);
  assert.equal(first.choices[0].message.content, await slmChat(message, 24, sampling));
  assert.equal(second.choices[0].message.content, first.choices[0].message.content);
  const otherSeed = await openai.chat.completions.create({ ...request, seed: 43 });
  assert.notEqual(otherSeed.choices[0].message.content, first.choices[0].message.content);
});

test('a streamed chat joins to the whole answer and ends with the usage (include_usage)', async () => {
  const request = { model: MODEL, messages: [{ role: 'user', content: 'Count to five.' }], max_tokens: 16, temperature: 0 };
  const whole = await openai.chat.completions.create(request);
  const stream = await openai.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finishReason = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    ++chunks;
    if (chunk.usage) {
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      usage = chunk.usage;
      continue;
    }
    assert.equal(chunk.usage ?? null, null, 'usage is null on every chunk but the last');
    text += chunk.choices[0].delta.content ?? '';
    finishReason = chunk.choices[0].finish_reason ?? finishReason;
  }
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finishReason, whole.choices[0].finish_reason);
  // The same counts; cached_tokens differs, as the second request reuses the first one's prompt.
  for (const count of ['prompt_tokens', 'completion_tokens', 'total_tokens']) assert.equal(usage[count], whole.usage[count]);
  assert.ok(usage.prompt_tokens_details.cached_tokens > 0, 'the streamed request reused the cached prompt');
});

test('completions take text or token ids, whole or streamed, with the same answer', async () => {
  const request = { model: MODEL, prompt: 'The capital of France is', max_tokens: 10, temperature: 0 };
  const whole = await openai.completions.create(request);
  assert.equal(whole.object, 'text_completion');
  assert.ok(whole.usage.completion_tokens >= 1 && whole.usage.completion_tokens <= 10);

  let streamed = '';
  for await (const chunk of await openai.completions.create({ ...request, stream: true }))
    streamed += chunk.choices[0]?.text ?? '';
  assert.equal(streamed, whole.choices[0].text);

  const tokens = await (await fetch(`${server.url}/tokenize`, {
    method: 'POST', headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify({ content: request.prompt }),
  })).json();
  const fromIds = await openai.completions.create({ ...request, prompt: tokens.tokens });
  assert.equal(fromIds.choices[0].text, whole.choices[0].text);
  assert.equal(fromIds.usage.prompt_tokens, whole.usage.prompt_tokens);
});

test('chat logprobs: each token with its logprob and the top_logprobs, best first', async () => {
  const completion = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0, logprobs: true,
    top_logprobs: 3,
  });
  const entries = completion.choices[0].logprobs.content;
  assert.equal(entries.length, completion.usage.completion_tokens);
  for (const entry of entries) {
    assert.equal(typeof entry.token, 'string');
    assert.ok(entry.logprob <= 0);
    assert.ok(Array.isArray(entry.bytes));
    assert.equal(entry.top_logprobs.length, 3);
    for (let i = 1; i < 3; ++i) assert.ok(entry.top_logprobs[i - 1].logprob >= entry.top_logprobs[i].logprob);
    // Greedy: the sampled token is the most likely one.
    assert.equal(entry.logprob, entry.top_logprobs[0].logprob);
  }
});

test('legacy completions logprobs are parallel arrays', async () => {
  const completion = await openai.completions.create({
    model: MODEL, prompt: 'Once upon a time', max_tokens: 5, temperature: 0, logprobs: 2,
  });
  const { tokens, token_logprobs: logprobs, top_logprobs: tops } = completion.choices[0].logprobs;
  assert.equal(tokens.length, completion.usage.completion_tokens);
  assert.equal(logprobs.length, tokens.length);
  assert.equal(tops.length, tokens.length);
  for (const top of tops) assert.equal(Object.keys(top).length, 2);
});

test('a wrong key is an AuthenticationError (401), and so is a missing one, with the OpenAI error object', async () => {
  await assert.rejects(
    client(env, server, 'wrong-key').chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
    (error) => {
      assert.ok(error instanceof env.OpenAI.AuthenticationError, String(error));
      assert.equal(error.status, 401);
      assert.equal(typeof error.error.message, 'string');
      assert.ok('type' in error.error && 'param' in error.error && 'code' in error.error, JSON.stringify(error.error));
      return true;
    });
  const missing = await fetch(`${server.baseURL}/models`);
  assert.equal(missing.status, 401);
  assert.deepEqual(Object.keys((await missing.json()).error).sort(), ['code', 'message', 'param', 'type']);
});
