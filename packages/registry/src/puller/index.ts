export {
  CocoonImportError,
  type CocoonImporterOptions,
  cocoonImporter,
} from './cocoon-importer.js';
export type { Importer, ImportRequest } from './importer.js';
export { NewPuller, newPuller, Puller, PullerBusyError, PullerKindError } from './puller.js';
export type {
  CallOptions,
  EnsureOptions,
  EnsureResult,
  MaterializedFile,
  PulledKind,
  PullerEvent,
  PullerOptions,
  PullerStats,
  RemoteEntry,
} from './types.js';
