// The chat page's Server-Sent Events parser (lib/server/webui/js/sse.js), fed the stream in
// pieces cut anywhere, as fetch() delivers it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSseParser, readSseBody } from '../../../../lib/server/webui/js/sse.js';

const STREAM = 'data: {"a":1}\n\n: keep-alive\n\ndata: {"b":"x\\ny"}\r\n\r\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n';
const EVENTS = ['{"a":1}', '{"b":"x\\ny"}', 'line one\nline two', '[DONE]'];

test('whole stream: one payload per event, comments skipped, multi-line data joined', () => {
  const parser = createSseParser();
  assert.deepEqual([...parser.push(STREAM), ...parser.end()], EVENTS);
});

test('every way of cutting the stream in two gives the same events', () => {
  for (let cut = 0; cut <= STREAM.length; cut += 1) {
    const parser = createSseParser();
    const events = [...parser.push(STREAM.slice(0, cut)), ...parser.push(STREAM.slice(cut)), ...parser.end()];
    assert.deepEqual(events, EVENTS, `cut at ${cut}`);
  }
});

test('one character at a time, \\r\\n split between pieces', () => {
  const parser = createSseParser();
  const events = [];
  for (const character of STREAM) events.push(...parser.push(character));
  events.push(...parser.end());
  assert.deepEqual(events, EVENTS);
});

test('an event the stream ends without a blank line still counts; fields other than data are ignored', () => {
  const parser = createSseParser();
  assert.deepEqual(parser.push('event: x\nid: 3\nretry: 10\ndata:no-space\n'), []);
  assert.deepEqual(parser.end(), ['no-space']);
});

test('readSseBody decodes UTF-8 split across reads', async () => {
  const bytes = new TextEncoder().encode('data: {"t":"é😀"}\n\ndata: [DONE]\n\n');
  const body = new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
      controller.close();
    },
  });
  const payloads = [];
  await readSseBody(body, (payload) => payloads.push(payload));
  assert.deepEqual(payloads, ['{"t":"é😀"}', '[DONE]']);
});
