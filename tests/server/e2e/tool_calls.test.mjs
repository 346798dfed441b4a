// Tool calls and structured output as the official `openai` npm client sees them: `tools` with
// tool_choice "required" (and a named function) give message.tool_calls whose arguments parse as
// JSON valid against the tool's schema, whole and streamed (delta.tool_calls joined by index);
// the streamed arguments come in pieces whose accumulation by the client's ChatCompletionStream
// equals the whole reply's; response_format json_schema gives JSON of the schema's shape. The model has random weights and
// the real Qwen2.5 vocabulary; the server renders with Qwen2.5's real template (its tools, and
// the Hermes <tool_call> format): a valid call is entirely the grammar's doing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { client, requireEnvironment, startServer } from './harness.mjs';

const MODEL = 'syn-qwen2-vocab-Q4_K_M.gguf';
const env = requireEnvironment([MODEL]);
const TEMPLATE = path.join(path.dirname(path.dirname(env.models[MODEL])), 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja');
if (!existsSync(TEMPLATE)) {
  console.log(`skipped: shared asset missing: ${TEMPLATE}`);
  process.exit(77);
}

let server;
let openai;
before(async () => {
  server = await startServer(env, ['-m', env.models[MODEL], '--chat-template-file', TEMPLATE, '--parallel', '2',
                                   '-t', '1', '-c', '1024']);
  openai = client(env, server, 'unused');
});
after(async () => {
  const exit = await server.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather forecast for a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', maxLength: 12 },
        days: { type: 'integer', minimum: 1, maximum: 7 },
        unit: { enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city', 'days', 'unit'],
      additionalProperties: false,
    },
  },
};
const timeTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } };

// Noise from a random model: temperature 1 among the 40 best allowed tokens.
const noisy = (seed) => ({ temperature: 1, top_k: 40, top_p: 1, min_p: 0, seed, max_tokens: 96 });

function assertWeatherArguments(text) {
  const args = JSON.parse(text);
  assert.deepEqual(Object.keys(args).sort(), ['city', 'days', 'unit'], text);
  assert.equal(typeof args.city, 'string');
  assert.ok([...args.city].length <= 12, text);
  assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7, text);
  assert.ok(['celsius', 'fahrenheit'].includes(args.unit), text);
}

test('tool_choice "required": one call with an id and arguments valid against the schema', async () => {
  for (const seed of [1, 2, 3]) {
    const completion = await openai.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris for 3 days?' }],
      tools: [weatherTool], tool_choice: 'required', parallel_tool_calls: false, ...noisy(seed),
    });
    const [choice] = completion.choices;
    assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice));
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls.length, 1);
    const [call] = choice.message.tool_calls;
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assertWeatherArguments(call.function.arguments);
  }
});

test('streamed: delta.tool_calls joined by index give the same kind of call', async () => {
  const stream = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [weatherTool, timeTool], tool_choice: { type: 'function', function: { name: 'get_weather' } },
    stream: true, ...noisy(7),
  });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    const [choice] = chunk.choices;
    if (!choice) continue;
    for (const delta of choice.delta.tool_calls ?? []) {
      calls[delta.index] ??= { id: '', name: '', arguments: '' };
      if (delta.id) calls[delta.index].id = delta.id;
      calls[delta.index].name += delta.function?.name ?? '';
      calls[delta.index].arguments += delta.function?.arguments ?? '';
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  // Parallel calls: max_tokens may cut the model inside a later call, whose arguments then stop
  // where it was cut (finish_reason "length", as OpenAI's).
  assert.ok(['tool_calls', 'length'].includes(finish), finish);
  assert.ok(calls.length >= 1 && calls.length <= 4, JSON.stringify(calls));
  calls.forEach((call, i) => {
    assert.match(call.id, /^call_/);
    assert.equal(call.name, 'get_weather');
    if (finish === 'tool_calls' || i + 1 < calls.length) assertWeatherArguments(call.arguments);
  });
});

test('streamed arguments arrive in pieces, and the client\'s accumulation equals the whole reply', async () => {
  for (const [seed, toolChoice] of [[21, 'required'], [22, 'auto']]) {
    const request = {
      model: MODEL, messages: [{ role: 'user', content: 'Weather in Lima for 2 days?' }],
      tools: [weatherTool], tool_choice: toolChoice, parallel_tool_calls: false, ...noisy(seed),
    };
    const whole = await openai.chat.completions.create(request);
    // The client's own accumulation of the stream (ChatCompletionStream.finalChatCompletion).
    const stream = openai.chat.completions.stream(request);
    let pieces = 0;
    stream.on('tool_calls.function.arguments.delta', () => { pieces += 1; });
    const streamed = await stream.finalChatCompletion();
    const [wholeChoice] = whole.choices;
    const [streamedChoice] = streamed.choices;
    assert.equal(streamedChoice.finish_reason, wholeChoice.finish_reason);
    assert.equal(streamedChoice.message.content ?? null, wholeChoice.message.content ?? null);
    const calls = (choice) => (choice.message.tool_calls ?? []).map((call) => [call.function.name, call.function.arguments]);
    assert.deepEqual(calls(streamedChoice), calls(wholeChoice));
    if (toolChoice === 'required') {
      assert.equal(wholeChoice.finish_reason, 'tool_calls', JSON.stringify(wholeChoice));
      assertWeatherArguments(wholeChoice.message.tool_calls[0].function.arguments);
      assert.ok(pieces > 3, `the arguments came in ${pieces} pieces`);
    }
  }
});

test('the call and its result go back into the conversation', async () => {
  const first = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Weather in Rome?' }],
    tools: [weatherTool], tool_choice: 'required', parallel_tool_calls: false, ...noisy(4),
  });
  const assistant = first.choices[0].message;
  const second = await openai.chat.completions.create({
    model: MODEL, tools: [weatherTool], tool_choice: 'none', max_tokens: 4, temperature: 0,
    messages: [{ role: 'user', content: 'Weather in Rome?' }, assistant,
               { role: 'tool', tool_call_id: assistant.tool_calls[0].id, content: '{"sky": "clear"}' }],
  });
  assert.ok(['stop', 'length'].includes(second.choices[0].finish_reason));
  assert.equal(second.choices[0].message.tool_calls, undefined);
  assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens, 'the call and its result were rendered');
});

test('response_format json_schema: the content is JSON of the schema', async () => {
  const schema = {
    type: 'object',
    properties: { label: { enum: ['spam', 'ham'] }, score: { type: 'integer', minimum: 0, maximum: 9 } },
    required: ['label', 'score'], additionalProperties: false,
  };
  const completion = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Classify: win a prize now' }], ...noisy(5),
    response_format: { type: 'json_schema', json_schema: { name: 'verdict', strict: true, schema } },
  });
  assert.equal(completion.choices[0].finish_reason, 'stop');
  const value = JSON.parse(completion.choices[0].message.content);
  assert.ok(['spam', 'ham'].includes(value.label));
  assert.ok(Number.isInteger(value.score) && value.score >= 0 && value.score <= 9);
});

test('an unsupported schema keyword is a 400 the client raises, naming the keyword', async () => {
  await assert.rejects(
    openai.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', not: {} } } },
    }),
    (error) => error.status === 400 && error.param === 'response_format.json_schema.schema' && /'not'/.test(error.message));
});
