/** The JSON shapes of the server's `/api/` and `/auth/` answers, as the dashboard reads them. */

export type Kind = 'snapshot' | 'cloud-image' | 'container-image' | 'image-index' | string;

export interface Stats {
  repositoryCount: number;
  tagCount: number;
  blobCount: number;
  totalSize: number;
  logicalSize: number;
}

export interface Repository {
  id: number;
  name: string;
  tagCount: number;
  totalSize: number;
  artifactType?: string;
  kind?: Kind;
  createdAt: string;
  updatedAt: string;
}

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
}

export interface PlatformSize {
  digest: string;
  platform?: Platform;
  size: number;
  layerCount: number;
}

export interface Tag {
  id: number;
  repoName: string;
  name: string;
  digest: string;
  mediaType: string;
  artifactType?: string;
  kind: Kind;
  totalSize: number;
  layerCount: number;
  platformSizes?: PlatformSize[];
  pushedAt: string;
}

export interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  title?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface SnapshotFile {
  mode?: number;
  sparseSize?: number;
  size?: number;
  [k: string]: unknown;
}

export interface SnapshotConfig {
  snapshotId?: string;
  description?: string;
  image?: string;
  imageType?: string;
  hypervisor?: string;
  cpu?: number;
  memory?: number;
  storage?: number;
  nics?: number;
  network?: string;
  windows?: boolean;
  files?: Record<string, SnapshotFile>;
  createdAt?: string;
  [k: string]: unknown;
}

export interface Referrer {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface TagDetail extends Tag {
  tag: string;
  size: number;
  subjectDigest?: string;
  configDigest?: string;
  manifest: unknown;
  layers: Layer[];
  children?: Layer[];
  snapshotConfig?: SnapshotConfig;
  referrers: Referrer[];
}

export interface AuditEvent {
  id: number;
  at: string;
  actor: string;
  action: string;
  repository?: string;
  reference?: string;
  digest?: string;
  detail?: Record<string, unknown>;
}

export type Scope = 'pull' | 'push' | 'delete' | 'admin';

export interface Token {
  id: number;
  name: string;
  createdBy: string;
  scopes: Scope[];
  repoPattern: string;
  createdAt: string;
  expiresAt?: string;
  lastUsed?: string;
  revokedAt?: string;
}

export interface CreatedToken extends Token {
  /** The plaintext, shown once. */
  token: string;
}

export interface Me {
  user: string;
  email: string;
  kind: string;
  api: 'none' | 'read' | 'admin';
  grants: unknown;
  csrfToken?: string;
}

export interface AuthConfig {
  sso: boolean;
  anonymousPull: boolean;
}

export interface Version {
  version: string;
  storage: 'filesystem' | 's3';
  index: 'sqlite' | 'mysql';
}

export interface PushDay {
  day: string;
  count: number;
}

/** One page of a cursor-paginated list. */
export interface Page<T> {
  items: T[];
  nextCursor?: string;
}
