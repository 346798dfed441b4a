// Server-Sent Events, as /v1/chat/completions streams them: the text arrives in pieces that cut
// lines anywhere, and each event's `data:` lines make one payload. Pure: no DOM, no fetch.

// A parser fed text pieces in order; push() returns the payloads of the events the piece
// completed (the "[DONE]" marker included: the caller decides what it means).
export function createSseParser() {
  let buffer = '';
  let data = [];
  const takeLine = (line, events) => {
    if (line === '') {  // a blank line ends the event
      if (data.length > 0) events.push(data.join('\n'));
      data = [];
      return;
    }
    if (line.startsWith(':')) return;  // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);  // event, id and retry are not used by the API
  };
  return {
    push(text) {
      buffer += text;
      const events = [];
      let start = 0;
      for (;;) {
        const newline = buffer.slice(start).search(/\r\n|\r|\n/);
        if (newline < 0) break;
        const end = start + newline;
        // A lone \r at the very end may be the first half of \r\n: wait for the next piece.
        if (buffer[end] === '\r' && end + 1 === buffer.length) break;
        takeLine(buffer.slice(start, end), events);
        start = end + (buffer.startsWith('\r\n', end) ? 2 : 1);
      }
      buffer = buffer.slice(start);
      return events;
    },
    // The end of the stream: an event not closed by a blank line still counts.
    end() {
      const events = [];
      if (buffer !== '') takeLine(buffer.replace(/\r$/, ''), events);
      buffer = '';
      takeLine('', events);
      return events;
    },
  };
}

// Reads a fetch() response body to its end, calling onPayload(text) for each event's data.
export async function readSseBody(body, onPayload) {
  const parser = createSseParser();
  const decoder = new TextDecoder('utf-8');
  const reader = body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const payload of parser.push(decoder.decode(value, { stream: true }))) onPayload(payload);
  }
  for (const payload of parser.push(decoder.decode())) onPayload(payload);
  for (const payload of parser.end()) onPayload(payload);
}
