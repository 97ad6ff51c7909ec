"use strict";
// Streaming reads: chunks of JSON text read by a worker, handed to an async generator.

/**
 * Parsed JSON chunks from `fetch` (a worker read resolving to JSON text, or null at the end),
 * asking for the next chunk before the current one is handed out, so the disk read overlaps
 * the consumer's work.
 */
async function* readAhead(fetch) {
  let next = fetch();
  for (;;) {
    const text = await next;
    if (text === null) return;
    next = fetch();
    next.catch(() => {}); // a consumer that stops early leaves this read unobserved
    yield JSON.parse(text);
  }
}

module.exports = { readAhead };
