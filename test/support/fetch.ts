// fetch for streaming clients in tests on Node 20's bundled undici, whose
// fetch follows the caller's AbortSignal only through a WeakRef to the
// request it made: once a garbage collection has taken that request, abort()
// no longer reaches a response body still streaming, and the client keeps
// the connection open and reading (nodejs/undici#3644, nodejs/node#55428).
// A browser's fetch has no such bug, and a server cannot tell such a client
// from one that wants to stay; gateway/stream-release.test.ts shows the
// gateway and the timeline service release a stream whose client has really
// gone, over every protocol. Here the body is piped through a stream the
// signal cancels, which cancels undici's body and closes the socket.
export const fetchKeepingAbort: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const signal = init?.signal;
  if (signal === null || signal === undefined || res.body === null) return res;
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  res.body.pipeTo(writable, { signal }).catch(() => {});
  return new Response(readable, res);
};
