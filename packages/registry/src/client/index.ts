export {
  Authenticator,
  type Credentials,
  repositoryScope,
} from './auth.js';
export { type Challenge, nextLink, parseChallenges } from './challenge.js';
export {
  type BlobSource,
  type ContentInfo,
  DEFAULT_MANIFEST_ACCEPT,
  type FetchedManifest,
  type GetBlobOptions,
  type PushBlobOptions,
  type PushBlobResult,
  RegistryClient,
  type RegistryClientOptions,
} from './client.js';
export {
  parseRepositorySettings,
  REPOSITORY_SETTINGS_ROUTE,
  type RepositorySettingsDocument,
  repositorySettingsPath,
} from './control-api.js';
export {
  RegistryDeniedError,
  RegistryHttpError,
  RegistryNetworkError,
  RegistryNotFoundError,
  RegistryProtocolError,
  RegistryUnauthorizedError,
  type RemoteErrorEntry,
} from './errors.js';
export {
  type BlobReader,
  type ChunkedFileInfo,
  type ChunkedFileInput,
  type ChunkedFileSource,
  type ChunkedImportOptions,
  type ChunkedPushOptions,
  type ChunkedPushResult,
  type ChunkedReadOptions,
  ChunkedSnapshotPush,
  type ChunkSource,
  ChunkVerificationError,
  chunkedFileBytes,
  chunkedFileMap,
  chunkedImportEntries,
  clientBlobs,
  type KnownChunksReport,
  type PushChunkedOptions,
  pushChunkedSnapshot,
} from './incremental/index.js';
export {
  createDispatcher,
  type HttpRequest,
  type HttpResponse,
  type RequestBody,
  Transport,
  type TransportOptions,
} from './transport.js';
