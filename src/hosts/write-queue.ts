// The order in which a host's queued writes take their turn: revokes (and the clean-up of a failed
// issue) first, then issues one caller at a time, so one caller's burst cannot hold up another.

/** Revokes (and the clean-up of a failed issue) go first; issues are served one caller at a time. */
export type HostLane = { kind: 'revoke' } | { kind: 'issue'; caller: string };

export interface QueuedWrite {
  call: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  enqueuedAt: number;
  /** Latest start within the queue bound. */
  deadline: number;
}

export interface WriteQueue {
  push(lane: HostLane, write: QueuedWrite): void;
  /** The write whose turn is next, taken off the queue. */
  next(): QueuedWrite | undefined;
  size(): number;
  /** Writes that would start before a new one in this lane. */
  aheadOf(lane: HostLane): number;
  /** Takes off the queue, and returns, every write `leaves` picks. */
  remove(leaves: (write: QueuedWrite) => boolean): QueuedWrite[];
}

export function createWriteQueue(): WriteQueue {
  const revokes: QueuedWrite[] = [];
  // Insertion order is the round-robin order: a served caller with more work moves to the back.
  const issuesByCaller = new Map<string, QueuedWrite[]>();

  const size = () => {
    let count = revokes.length;
    for (const writes of issuesByCaller.values()) count += writes.length;
    return count;
  };

  return {
    push(lane, write) {
      if (lane.kind === 'revoke') {
        revokes.push(write);
        return;
      }
      const writes = issuesByCaller.get(lane.caller);
      if (writes) writes.push(write);
      else issuesByCaller.set(lane.caller, [write]);
    },

    next() {
      const revoke = revokes.shift();
      if (revoke) return revoke;
      for (const [caller, writes] of issuesByCaller) {
        const write = writes.shift();
        issuesByCaller.delete(caller);
        if (writes.length > 0) issuesByCaller.set(caller, writes);
        return write;
      }
      return undefined;
    },

    size,

    aheadOf(lane) {
      if (lane.kind === 'revoke') return revokes.length;
      const own = issuesByCaller.get(lane.caller)?.length ?? 0;
      let others = 0;
      for (const [caller, writes] of issuesByCaller) {
        if (caller !== lane.caller) others += Math.min(writes.length, own + 1);
      }
      return revokes.length + own + others;
    },

    remove(leaves) {
      const removed: QueuedWrite[] = [];
      for (const writes of [revokes, ...issuesByCaller.values()]) {
        for (let index = writes.length - 1; index >= 0; index -= 1) {
          const write = writes[index];
          if (write && leaves(write)) removed.push(...writes.splice(index, 1));
        }
      }
      for (const [caller, writes] of issuesByCaller) if (writes.length === 0) issuesByCaller.delete(caller);
      return removed;
    },
  };
}
