// The one place the engine reaches into tfjs internals: its engine state's gradient tape, and whether one is being
// recorded. package.json pins tfjs to an exact version, and tests/seams.test.ts fails if either is no longer where
// this expects it.
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


/** Whether tfjs is recording a gradient tape here (inside tf.grad(s) or variableGrads, outside any kernel): where it
 * is not (decoding, evaluation), an op needs no custom gradient wrapped around it. */
export function recording(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}
