// The page as a client of the server's own OpenAI API: nothing here is private to the page.

import { readSseBody } from './sse.js';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(apiKey) {
  const out = { 'Content-Type': 'application/json' };
  if (apiKey) out.Authorization = `Bearer ${apiKey}`;
  return out;
}

// An error response's message: the OpenAI error object's, else the status.
async function failure(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === 'string') message = body.error.message;
  } catch {
    // not JSON: the status says it
  }
  return new ApiError(response.status, message);
}

// The served model's name (GET /v1/models), or '' when there is none.
export async function fetchModelName(apiKey) {
  const response = await fetch('/v1/models', { headers: headers(apiKey) });
  if (!response.ok) throw await failure(response);
  const body = await response.json();
  return body && Array.isArray(body.data) && body.data[0] && typeof body.data[0].id === 'string' ? body.data[0].id : '';
}

// POST /v1/chat/completions with stream:true; onChunk(parsed chunk) for each event until
// [DONE]. Aborting `signal` closes the connection, which the server takes as a cancel.
export async function streamChat(body, { apiKey, signal, onChunk }) {
  const response = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: headers(apiKey),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  await readSseBody(response.body, (payload) => {
    if (payload === '[DONE]') return;
    let chunk;
    try {
      chunk = JSON.parse(payload);
    } catch {
      return;  // not ours to crash on
    }
    if (chunk && chunk.error) throw new ApiError(500, String(chunk.error.message || 'error in the stream'));
    onChunk(chunk);
  });
}
