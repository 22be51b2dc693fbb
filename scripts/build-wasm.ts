// `npm run build:wasm`: writes the WASM kernels' module from their text (scripts/wasm-kernels.ts).
import { writeFileSync } from 'node:fs';
import { generated, OUT } from './wasm-kernels';

writeFileSync(OUT, await generated());
console.log(`wrote ${OUT}`);
