// tfjs-core with the side-effect modules the engine relies on: gradient definitions (training) and the
// chained tensor methods (x.reshape(...)). Engine code imports tf from here, never tfjs-core directly.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-cpu';

export * from '@tensorflow/tfjs-core';
