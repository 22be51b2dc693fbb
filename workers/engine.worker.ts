// The engine in a module Web Worker, behind comlink. The UI imports only the type WorkerApi.
import * as Comlink from 'comlink';
import { configureBrowserWasm } from './wasm-urls';
import { Engine, type EngineApi } from './engine/engine';
import { IdbCheckpointStore } from './engine/idb-checkpoints';
import { DatasetService } from './engine/data/service';
import { deleteCachedModel, listCachedModels } from './engine/model-cache';

configureBrowserWasm();

const engine = new Engine({
  demoBaseUrl: new URL(`${import.meta.env.BASE_URL}models/demo`, self.location.origin).href,
  checkpoints: (runId) => new IdbCheckpointStore(runId),
});

const datasets = new DatasetService(engine);

const engineApi: EngineApi = {
  load: (source, options, onProgress) => engine.load(source, options, onProgress),
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
  setLoraScale: (scale) => engine.setLoraScale(scale),
  adapterInfo: () => engine.adapterInfo(),
  setChatTemplate: (choice) => engine.setChatTemplate(choice),
};

const api = {
  ...engineApi,
  inspect: engine.inspect.bind(engine),
  watchDeviceLoss: engine.watchDeviceLoss.bind(engine),
  addDataset: datasets.addDataset.bind(datasets),
  listDatasets: datasets.listDatasets.bind(datasets),
  renameDataset: datasets.renameDataset.bind(datasets),
  deleteDataset: datasets.deleteDataset.bind(datasets),
  datasetFile: datasets.datasetFile.bind(datasets),
  restat: datasets.restat.bind(datasets),
  previewDataset: datasets.previewDataset.bind(datasets),
  estimateTraining: datasets.estimateTraining.bind(datasets),
  evaluateDataset: datasets.evaluateDataset.bind(datasets),
  stopEvaluation: datasets.stopEvaluation.bind(datasets),
  listCachedModels,
  deleteCachedModel,
  listRuns: datasets.listRuns.bind(datasets),
  trainOnDataset: datasets.trainOnDataset.bind(datasets),
};

Comlink.expose(api);

export type WorkerApi = typeof api;
