// Streamed chunks folded into a reply, and the figures under it (lib/server/webui/js/reply.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChunk, formatFigures, newReply, replyFigures } from '../../../../lib/server/webui/js/reply.js';

const chunk = (delta, finish = null) => ({ choices: [{ index: 0, delta, finish_reason: finish }] });

test('content and reasoning accumulate apart; finish and usage are kept', () => {
  const reply = newReply();
  assert.equal(applyChunk(reply, chunk({ role: 'assistant', content: '' })), false);
  assert.equal(applyChunk(reply, chunk({ reasoning_content: 'think ' })), true);
  assert.equal(applyChunk(reply, chunk({ reasoning_content: 'more' })), true);
  assert.equal(applyChunk(reply, chunk({ content: 'Hello' })), true);
  assert.equal(applyChunk(reply, chunk({ content: ', world' })), true);
  assert.equal(applyChunk(reply, chunk({}, 'length')), false);
  const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, prompt_tokens_details: { cached_tokens: 8 } };
  assert.equal(applyChunk(reply, { choices: [], usage }), false);
  assert.equal(reply.content, 'Hello, world');
  assert.equal(reply.reasoning, 'think more');
  assert.equal(reply.finish, 'length');
  assert.deepEqual(reply.usage, usage);
});

test('chunks of the wrong shape change nothing', () => {
  const reply = newReply();
  for (const bad of [null, 42, 'x', {}, { choices: 'x' }, { choices: [null] }, chunk({ content: 7 }), chunk(null)])
    assert.equal(applyChunk(reply, bad), false);
  assert.deepEqual(reply, newReply());
});

test('figures: TTFT from the page clock, tokens per second after the first token', () => {
  const usage = { prompt_tokens: 30, completion_tokens: 11, prompt_tokens_details: { cached_tokens: 20 } };
  const figures = replyFigures(usage, { startedAt: 1000, firstTextAt: 1250, endedAt: 1750 });
  assert.deepEqual(figures, { promptTokens: 30, cachedTokens: 20, generatedTokens: 11, tokensPerSecond: 20, ttftMs: 250 });
  assert.equal(formatFigures(figures), 'prompt 30 tokens (20 cached) · 11 generated · 20.0 tok/s · TTFT 250 ms');
});

test('figures without usage or without text leave those figures out', () => {
  const none = replyFigures(null, { startedAt: 0, firstTextAt: null, endedAt: 10 });
  assert.deepEqual(none, { promptTokens: null, cachedTokens: null, generatedTokens: null, tokensPerSecond: null, ttftMs: null });
  assert.equal(formatFigures(none), '');
  const one = replyFigures({ prompt_tokens: 3, completion_tokens: 1 }, { startedAt: 0, firstTextAt: 5, endedAt: 5 });
  assert.equal(one.tokensPerSecond, null);
  assert.equal(formatFigures(one), 'prompt 3 tokens · 1 generated · TTFT 5 ms');
});

test('a stream that arrived in one piece: the rate is over the whole request', () => {
  const figures = replyFigures({ prompt_tokens: 5, completion_tokens: 100 }, { startedAt: 0, firstTextAt: 499, endedAt: 500 });
  assert.equal(figures.tokensPerSecond, 200);
  assert.equal(figures.ttftMs, 499);
});
