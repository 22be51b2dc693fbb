// The one place the engine reaches into tfjs internals: its engine state's gradient tape. package.json pins
// tfjs to an exact version, and tests/ops.test.ts fails if that field is no longer where this expects it.
import * as tf from '../tf';

type EngineState = { activeTape: unknown };

/** tfjs's engine state, where the tape of the gradient being recorded lives. */
export function engineState(): EngineState {
  return (tf.engine() as unknown as { state: EngineState }).state;
}

/**
 * tfjs keeps one global gradient tape; a gradient computed inside another's backward pass (llama.ts's
 * checkpointed block, recomputed in backward) would clear the outer tape when it finishes. Keep the outer tape aside meanwhile.
 */
export function withOwnTape<T>(f: () => T): T {
  const state = engineState();
  const outer = state.activeTape;
  try {
    return f();
  } finally {
    state.activeTape = outer;
  }
}

