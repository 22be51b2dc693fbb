// The engine in a module Web Worker, behind comlink: the Engine, the dataset library, run records and the
// model cache, exposed as one object that satisfies WorkerApi (workers/shared/api.ts).
import * as Comlink from 'comlink';
import { configureBrowserWasm } from './wasm-urls';
import { Engine } from '../engine/engine';
import { evaluateExample, evaluationExamples } from '../engine/evaluate';
import { estimateTraining } from '../engine/train/estimate';
import type { WorkerApi } from '../shared/api';
import { DatasetLibrary } from './datasets';
import { InvalidRequestError } from '../engine/errors';
import { exportGguf, exportMerged, exportRecipe } from './exports';
import { IdbCheckpointStore } from './idb-checkpoints';
import { deleteCachedModel, listCachedModels } from './model-cache';
import { RunRecorder } from './runs';
import { runStore } from './store';

configureBrowserWasm();

const engine = new Engine({
  demoBaseUrl: new URL(`${import.meta.env.BASE_URL}models/demo`, self.location.origin).href,
  checkpoints: (runId) => new IdbCheckpointStore(runId),
});
const datasets = new DatasetLibrary(engine);
const runs = new RunRecorder(engine, datasets, runStore);
let evaluationStopped = false; // set by stopEvaluation(), read between rows

const api = {
  load: (source, options, onProgress) => engine.load(source, options, onProgress),
  inspect: (source) => engine.inspect(source),
  watchDeviceLoss: (onLost) => engine.watchDeviceLoss(onLost),
  generate: (input, options, onToken) => engine.generate(input, options, onToken),
  stop: () => engine.stop(),
  unload: () => engine.unload(),
  info: () => engine.info(),
  train: (request, onEvent) => engine.train(request, onEvent),
  pauseTraining: () => engine.pauseTraining(),
  resumeTraining: () => engine.resumeTraining(),
  cancelTraining: () => engine.cancelTraining(),
  listCheckpoints: (runId) => engine.listCheckpoints(runId),
  useCheckpoint: (runId, name) => engine.useCheckpoint(runId, name),
  exportAdapter: () => engine.exportAdapter(),
  importAdapter: (files) => engine.importAdapter(files),
  adapterInfo: () => engine.adapterInfo(),
  setChatTemplate: (choice) => engine.setChatTemplate(choice),

  addDataset: (file, options, onProgress) => datasets.addDataset(file, options, onProgress),
  listDatasets: () => datasets.listDatasets(),
  renameDataset: (id, name) => datasets.renameDataset(id, name),
  deleteDataset: (id) => datasets.deleteDataset(id),
  datasetFile: (id) => datasets.datasetFile(id),
  restat: (id, maxSeqLen) => datasets.restat(id, maxSeqLen),
  setPlaceholders: (id, fill, maxSeqLen) => datasets.setPlaceholders(id, fill, maxSeqLen),
  previewDataset: (id, offset, count, maxSeqLen, trainOn) => datasets.previewDataset(id, offset, count, maxSeqLen, trainOn),
  estimateTraining: async (id, train, lora) => estimateTraining(engine, await datasets.examples(id), train, lora),
  evaluateDataset: async (req, onRow) => {
    const chosen = evaluationExamples(await datasets.examples(req.datasetId), req);
    evaluationStopped = false;
    for (let i = 0; i < chosen.length && !evaluationStopped; i++) onRow(await evaluateExample(engine, chosen[i], i, req.maxNewTokens, req.loraScale));
    return chosen.length;
  },
  stopEvaluation: () => {
    evaluationStopped = true;
    engine.stop();
  },
  listCachedModels,
  deleteCachedModel,
  listRuns: () => runs.listRuns(),
  trainOnDataset: (req, onEvent) => runs.trainOnDataset(req, onEvent),
  exportGguf: (type, loraScale, onProgress) => exportGguf(engine, type, loraScale, onProgress),
  exportMerged: (dtype, loraScale, onProgress) => exportMerged(engine, dtype, loraScale, onProgress),
  exportRecipe: async (runId) => {
    const run = await runStore.get(runId);
    if (!run) throw new InvalidRequestError(`There is no run ${runId} in this browser's storage.`);
    return exportRecipe(engine, run, await datasets.examples(run.datasetId));
  },
} satisfies WorkerApi;

Comlink.expose(api);
