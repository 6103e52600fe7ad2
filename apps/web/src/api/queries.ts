import {
  keepPreviousData,
  type Query,
  queryOptions,
  useMutation,
  useQuery,
  useQueryClient,
} from '@tanstack/react-query';
import {
  ApiError,
  getJson,
  getPage,
  query,
  repoPath,
  repoSettingsPath,
  send,
  setCsrfToken,
} from './client.js';
import { isUnauthorized, ME_KEY } from './query-client.js';
import type {
  AuditEvent,
  AuthConfig,
  CreatedToken,
  Me,
  PushDay,
  Repository,
  RepositorySettings,
  Scope,
  SnapshotFormat,
  Stats,
  Tag,
  TagDetail,
  Token,
  Version,
} from './types.js';

/** How often live views poll: a push or delete shows up within this long, without a reload. */
export const POLL_MS = 3000;

/**
 * Polls every {@link POLL_MS}, except a query the server refused with 401: asking again would
 * be refused again until the visitor signs in (which refetches everything).
 */
export function pollUnlessUnauthorized(q: Pick<Query, 'state'>): number | false {
  return isUnauthorized(q.state.error) ? false : POLL_MS;
}

const live = {
  refetchInterval: pollUnlessUnauthorized,
  placeholderData: keepPreviousData,
} as const;

/**
 * Every query of the dashboard, by what it asks for: its key and how to fetch it, in one place,
 * so a hook, a prefetch and an invalidation can never name a query differently.
 */
export const queries = {
  /**
   * Who the visitor is: signed in, or anonymous with the rights anonymous visitors have
   * (read-only, or admin in the local open mode); `null` when the server lets nobody in unsigned.
   */
  me: () =>
    queryOptions({
      queryKey: ME_KEY,
      queryFn: async (): Promise<Me | null> => {
        try {
          const me = await getJson<Me>('/auth/me');
          setCsrfToken(me.csrfToken);
          return me;
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) return null;
          throw err;
        }
      },
      staleTime: 60_000,
    }),
  authConfig: () =>
    queryOptions({
      queryKey: ['auth-config'],
      queryFn: () => getJson<AuthConfig>('/auth/config'),
      staleTime: Number.POSITIVE_INFINITY,
    }),
  stats: () =>
    queryOptions({ queryKey: ['stats'], queryFn: () => getJson<Stats>('/api/stats'), ...live }),
  version: () =>
    queryOptions({ queryKey: ['version'], queryFn: () => getJson<Version>('/api/version') }),
  pushesPerDay: (days: number) =>
    queryOptions({
      queryKey: ['pushes', days],
      queryFn: () => getJson<PushDay[]>(`/api/stats/pushes${query({ days })}`),
      ...live,
    }),
  repositories: (q: RepositoryQuery) =>
    queryOptions({
      queryKey: ['repositories', q],
      queryFn: () => getPage<Repository>(`/api/repositories${query({ ...q })}`),
      ...live,
    }),
  repository: (name: string) =>
    queryOptions({
      queryKey: ['repository', name],
      queryFn: () => getJson<Repository>(repoPath(name)),
      ...live,
    }),
  repositorySettings: (name: string) =>
    queryOptions({
      queryKey: ['repository-settings', name],
      queryFn: () => getJson<RepositorySettings>(repoSettingsPath(name)),
      ...live,
    }),
  tags: (name: string, cursor: string | undefined, limit: number) =>
    queryOptions({
      queryKey: ['tags', name, cursor, limit],
      queryFn: () => getPage<Tag>(`${repoPath(name)}/tags${query({ limit, cursor })}`),
      ...live,
    }),
  tag: (name: string, tag: string) =>
    queryOptions({
      queryKey: ['tag', name, tag],
      queryFn: () => getJson<TagDetail>(`${repoPath(name)}/tags/${encodeURIComponent(tag)}`),
      refetchInterval: pollUnlessUnauthorized,
      retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
    }),
  events: (cursor: string | undefined, limit: number) =>
    queryOptions({
      queryKey: ['events', cursor, limit],
      queryFn: () => getPage<AuditEvent>(`/api/events${query({ limit, cursor })}`),
      ...live,
    }),
  tokens: () =>
    queryOptions({ queryKey: ['tokens'], queryFn: () => getJson<Token[]>('/api/tokens'), ...live }),
};

export function useMe() {
  return useQuery(queries.me());
}

export function useAuthConfig() {
  return useQuery(queries.authConfig());
}

export function useSignIn() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (token: string) => {
      const res = await send<{ user: string; api: Me['api']; csrfToken: string }>(
        'POST',
        '/auth/token',
        {
          token,
        },
      );
      setCsrfToken(res?.csrfToken);
      return res;
    },
    // Every answer may differ for the signed-in visitor (more repositories, all events).
    onSuccess: () => client.invalidateQueries(),
  });
}

export function useStats() {
  return useQuery(queries.stats());
}

export function useVersion() {
  return useQuery(queries.version());
}

export function usePushesPerDay(days: number) {
  return useQuery(queries.pushesPerDay(days));
}

export interface RepositoryQuery {
  search?: string;
  sort?: string;
  limit?: number;
  cursor?: string;
}

export function useRepositories(q: RepositoryQuery) {
  return useQuery(queries.repositories(q));
}

export function useRepository(name: string) {
  return useQuery(queries.repository(name));
}

export function useRepositorySettings(name: string) {
  return useQuery(queries.repositorySettings(name));
}

/** Sets a repository's default snapshot format (push rights on it needed). */
export function useSetDefaultFormat(name: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (defaultFormat: SnapshotFormat) =>
      (await send<RepositorySettings>('PUT', repoSettingsPath(name), {
        defaultFormat,
      })) as RepositorySettings,
    onSuccess: (settings) => {
      client.setQueryData(queries.repositorySettings(name).queryKey, settings);
      // The repository shows the format too, and the change is in the activity feed.
      return Promise.all([
        client.invalidateQueries({ queryKey: queries.repository(name).queryKey }),
        client.invalidateQueries({ queryKey: ['events'] }),
      ]);
    },
  });
}

export function useTags(name: string, cursor: string | undefined, limit = 50) {
  return useQuery(queries.tags(name, cursor, limit));
}

export function useTag(name: string, tag: string) {
  return useQuery(queries.tag(name, tag));
}

export function useDeleteTag() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ name, tag }: { name: string; tag: string }) =>
      send('DELETE', `${repoPath(name)}/tags/${encodeURIComponent(tag)}`),
    onSuccess: () => client.invalidateQueries(),
  });
}

export function useEvents(cursor: string | undefined, limit = 50) {
  return useQuery(queries.events(cursor, limit));
}

/** Every token; only administrators may list them, so others leave it `enabled: false`. */
export function useTokens(enabled = true) {
  return useQuery({ ...queries.tokens(), enabled });
}

/**
 * Token names by id, for administrators (revocations name only the id); undefined for others,
 * who may not list tokens.
 */
export function useTokenNames(admin: boolean): Map<number, string> | undefined {
  const tokens = useTokens(admin);
  return tokens.data ? new Map(tokens.data.map((t) => [t.id, t.name])) : undefined;
}

export interface NewToken {
  name: string;
  scopes: Scope[];
  repoPattern: string;
  expiresIn?: string;
}

/**
 * Creates a token. `onCreated` gets the secret; it is a hook option rather than a `mutate`
 * callback because the latter is dropped when the calling component unmounts, and the first
 * token makes its creator read-only, which may remove the form before the answer arrives.
 */
export function useCreateToken(onCreated?: (t: CreatedToken) => void) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (t: NewToken) =>
      (await send<CreatedToken>('POST', '/api/tokens', t)) as CreatedToken,
    // The first token ends the local open mode: `/auth/me` then answers read-only.
    onSuccess: (t) => {
      onCreated?.(t);
      return Promise.all([
        client.invalidateQueries({ queryKey: queries.tokens().queryKey }),
        client.invalidateQueries({ queryKey: queries.me().queryKey }),
      ]);
    },
  });
}

export function useRevokeToken() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: number) => send('DELETE', `/api/tokens/${id}`),
    onSuccess: () => client.invalidateQueries({ queryKey: queries.tokens().queryKey }),
  });
}
