// slm-server under load through the official `openai` client: 32 mixed requests, 8 at a time,
// all answered and each answer identical to the same request sent alone; and a client that
// leaves in the middle of its answer frees its slot for the next request.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { client, eventually, metric, requireEnvironment, withServer } from './harness.mjs';

const MODEL = 'syn-qwen2-vocab-Q4_K_M.gguf';
const env = requireEnvironment([MODEL]);

// Request i of the load: chat or completion, whole or streamed, greedy or seeded, 8 to 20 tokens.
function loadRequest(i) {
  const sampling = i % 2 === 0 ? { temperature: 0 } : { temperature: 0.9, seed: 1000 + i };
  return {
    kind: i % 4 < 2 ? 'chat' : 'completion',
    stream: i % 3 === 0,
    body: { model: MODEL, max_tokens: 8 + (i % 4) * 4, ...sampling,
            ...(i % 4 < 2 ? { messages: [{ role: 'user', content: `Request ${i}: tell me something.` }] }
                          : { prompt: `Request ${i}: once upon a time` }) },
  };
}

// The answer's text, finish reason and token count, however it was sent.
async function send(openai, { kind, stream, body }) {
  const api = kind === 'chat' ? openai.chat.completions : openai.completions;
  if (!stream) {
    const answer = await api.create(body);
    const choice = answer.choices[0];
    return { text: kind === 'chat' ? choice.message.content : choice.text, finish: choice.finish_reason,
             tokens: answer.usage.completion_tokens };
  }
  let text = '';
  let finish = null;
  let tokens = null;
  for await (const chunk of await api.create({ ...body, stream: true, stream_options: { include_usage: true } })) {
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += (kind === 'chat' ? choice.delta.content : choice.text) ?? '';
    finish = choice.finish_reason ?? finish;
  }
  return { text, finish, tokens };
}

test('32 requests over 8 concurrent connections: all answered, each as when sent alone', { timeout: 240000 }, async () => {
  await withServer(env, ['-m', env.models[MODEL], '--parallel', '8', '-t', '1', '-c', '512'], async (server) => {
    const openai = client(env, server, 'unused');
    const requests = Array.from({ length: 32 }, (_, i) => loadRequest(i));

    const alone = [];
    for (const request of requests) alone.push(await send(openai, request));

    const together = new Array(requests.length);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      const connection = client(env, server, 'unused');
      for (let i = next++; i < requests.length; i = next++) together[i] = await send(connection, requests[i]);
    }));

    for (let i = 0; i < requests.length; ++i) {
      assert.ok(together[i], `request ${i} got no answer`);
      assert.ok(together[i].tokens >= 1, `request ${i} generated nothing`);
      assert.deepEqual(together[i], alone[i], `request ${i} (${JSON.stringify(requests[i])})`);
    }
    assert.equal(await metric(server, null, 'slm_requests_running'), 0);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });
});

test('a client that leaves mid-answer frees its slot, and the next request is served', { timeout: 120000 }, async () => {
  // One slot and no queue: while the slot is held, a request is refused with 503.
  await withServer(env, ['-m', env.models[MODEL], '--parallel', '1', '--queue', '0', '-t', '1', '-c', '2048'],
                   async (server) => {
    const openai = client(env, server, 'unused');
    // 1500 tokens take this model over 10 s: freeing the slot sooner means the abort was seen.
    const long = { model: MODEL, prompt: 'Once upon a time', max_tokens: 1500, temperature: 0 };

    const stream = await openai.completions.create({ ...long, stream: true });
    let chunks = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.text && ++chunks === 3) break;  // leaving the loop aborts the response
    }
    assert.ok(await eventually(async () => (await metric(server, null, 'slm_requests_running')) === 0, 3000),
              'the streamed request still runs 3 s after its client left');
    const next = await openai.completions.create({ ...long, max_tokens: 4 });
    assert.ok(next.usage.completion_tokens >= 1);

    // The same for a client waiting for a whole answer.
    const controller = new AbortController();
    const whole = openai.completions.create(long, { signal: controller.signal });
    assert.ok(await eventually(async () => (await metric(server, null, 'slm_requests_running')) === 1, 3000));
    controller.abort();
    await assert.rejects(whole, (error) => error instanceof env.OpenAI.APIUserAbortError);
    assert.ok(await eventually(async () => (await metric(server, null, 'slm_requests_running')) === 0, 3000),
              'the whole-answer request still runs 3 s after its client left');
    const after = await openai.completions.create({ ...long, max_tokens: 4 });
    assert.ok(after.usage.completion_tokens >= 1);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });
});
