// One assistant reply as it streams: the chunks of /v1/chat/completions folded into content,
// reasoning, finish reason and usage, and the figures shown under the reply. Pure.

export function newReply() {
  return { role: 'assistant', content: '', reasoning: '', finish: null, usage: null, figures: null };
}

// Folds one parsed chunk into `reply`; returns true when it carried text (content or reasoning).
export function applyChunk(reply, chunk) {
  let text = false;
  if (chunk && typeof chunk === 'object') {
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    const delta = choice && typeof choice.delta === 'object' && choice.delta !== null ? choice.delta : {};
    if (typeof delta.content === 'string' && delta.content !== '') {
      reply.content += delta.content;
      text = true;
    }
    if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') {
      reply.reasoning += delta.reasoning_content;
      text = true;
    }
    if (choice && typeof choice.finish_reason === 'string') reply.finish = choice.finish_reason;
    if (chunk.usage && typeof chunk.usage === 'object') reply.usage = chunk.usage;
  }
  return text;
}

const MIN_STREAM_MS = 20;

// The figures under a reply, from the server's usage and the page's own clock (milliseconds):
// `startedAt` when the request was sent, `firstTextAt` when the first text arrived, `endedAt`
// when the stream ended. Missing figures are null.
export function replyFigures(usage, { startedAt, firstTextAt, endedAt }) {
  const count = (value) => (Number.isFinite(value) && value >= 0 ? value : null);
  const promptTokens = usage ? count(usage.prompt_tokens) : null;
  const cachedTokens = usage && usage.prompt_tokens_details ? count(usage.prompt_tokens_details.cached_tokens) : null;
  const generatedTokens = usage ? count(usage.completion_tokens) : null;
  const ttftMs = Number.isFinite(firstTextAt) && Number.isFinite(startedAt) ? Math.max(0, firstTextAt - startedAt) : null;
  // The first token came with the first text: the rate counts the tokens after it. A fast model's
  // stream can arrive in one piece; then the time after the first text says nothing, and the rate
  // is over the whole request.
  let tokensPerSecond = null;
  if (generatedTokens !== null && generatedTokens > 1 && Number.isFinite(firstTextAt)) {
    if (endedAt - firstTextAt >= MIN_STREAM_MS) tokensPerSecond = (generatedTokens - 1) / ((endedAt - firstTextAt) / 1000);
    else if (endedAt > startedAt) tokensPerSecond = generatedTokens / ((endedAt - startedAt) / 1000);
  }
  return { promptTokens, cachedTokens, generatedTokens, tokensPerSecond, ttftMs };
}

// The figures as one line of text, e.g. "prompt 12 tokens (8 cached) · 40 generated · 25.3 tok/s · TTFT 120 ms".
export function formatFigures(figures) {
  if (!figures) return '';
  const parts = [];
  if (figures.promptTokens !== null) {
    parts.push(figures.cachedTokens !== null
      ? `prompt ${figures.promptTokens} tokens (${figures.cachedTokens} cached)`
      : `prompt ${figures.promptTokens} tokens`);
  }
  if (figures.generatedTokens !== null) parts.push(`${figures.generatedTokens} generated`);
  if (figures.tokensPerSecond !== null) parts.push(`${figures.tokensPerSecond.toFixed(1)} tok/s`);
  if (figures.ttftMs !== null) parts.push(`TTFT ${Math.round(figures.ttftMs)} ms`);
  return parts.join(' · ');
}
