/**
 * A value made on first call and shared by every later call; a failed attempt is forgotten, so the next
 * call tries again. Its use here: modules loaded with `import()` only when a path needs them — in a
 * Lambda bundle such a module is a chunk of its own, which a cold start neither parses nor runs.
 */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= make().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
