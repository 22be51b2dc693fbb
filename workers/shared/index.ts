// What the UI may import from workers/: types, defaults and the API. No tfjs, no engine code.
export type * from './types';
export type * from './api';
export * from './defaults';
