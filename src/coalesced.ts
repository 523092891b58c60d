// Requests of one kind to Postgres or Redis, coalesced: those asked for in the same turn of the
// event loop, or while one batch is under way, go together in the next batch. An idle process
// sends each almost at once, as before; a busy one sends one statement for many requests instead
// of one each, and every round trip costs CPU on both sides. A request never starts before it was
// asked for, so it sees every change committed before that.

interface Waiting<Input, Output> {
  input: Input;
  resolve(output: Output): void;
  reject(error: unknown): void;
}

/** Requests per statement at most. */
const MAX_BATCH = 100;

/**
 * `run` answers a batch of inputs with one output per input, in order; a batch that fails fails
 * each request in it.
 */
export function coalesced<Input, Output>(
  run: (inputs: Input[]) => Promise<Output[]>,
): (input: Input) => Promise<Output> {
  const queue: Waiting<Input, Output>[] = [];
  let running = false;

  const runBatch = async (batch: Waiting<Input, Output>[]) => {
    try {
      const outputs = await run(batch.map((item) => item.input));
      for (const [index, item] of batch.entries()) item.resolve(outputs[index] as Output);
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  };

  const drain = async () => {
    try {
      while (queue.length > 0) await runBatch(queue.splice(0, MAX_BATCH));
    } finally {
      running = false;
    }
  };

  return (input) =>
    new Promise<Output>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      if (running) return;
      running = true;
      // After the callbacks of this turn of the event loop: answers that arrived together (say,
      // many hosts' replies read at once) ask together.
      setImmediate(drain);
    });
}
