import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, getJson, getPage, query, repoPath, send, setCsrfToken } from './client.js';
import type {
  AuditEvent,
  AuthConfig,
  CreatedToken,
  Me,
  PushDay,
  Repository,
  Scope,
  Stats,
  Tag,
  TagDetail,
  Token,
  Version,
} from './types.js';

/** How often live views poll: a push or delete shows up within this long, without a reload. */
export const POLL_MS = 3000;
const live = { refetchInterval: POLL_MS, placeholderData: keepPreviousData } as const;

/** Who is signed in; `null` when nobody is (401). */
export function useMe() {
  return useQuery({
    queryKey: ['me'],
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
  });
}

export function useAuthConfig() {
  return useQuery({
    queryKey: ['auth-config'],
    queryFn: () => getJson<AuthConfig>('/auth/config'),
    staleTime: Number.POSITIVE_INFINITY,
  });
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
    onSuccess: () => client.invalidateQueries({ queryKey: ['me'] }),
  });
}

export function useStats() {
  return useQuery({ queryKey: ['stats'], queryFn: () => getJson<Stats>('/api/stats'), ...live });
}

export function useVersion() {
  return useQuery({ queryKey: ['version'], queryFn: () => getJson<Version>('/api/version') });
}

export function usePushesPerDay(days: number) {
  return useQuery({
    queryKey: ['pushes', days],
    queryFn: () => getJson<PushDay[]>(`/api/stats/pushes${query({ days })}`),
    ...live,
  });
}

export interface RepositoryQuery {
  search?: string;
  sort?: string;
  limit?: number;
  cursor?: string;
}

export function useRepositories(q: RepositoryQuery) {
  return useQuery({
    queryKey: ['repositories', q],
    queryFn: () => getPage<Repository>(`/api/repositories${query({ ...q })}`),
    ...live,
  });
}

export function useRepository(name: string) {
  return useQuery({
    queryKey: ['repository', name],
    queryFn: () => getJson<Repository>(repoPath(name)),
    ...live,
  });
}

export function useTags(name: string, cursor: string | undefined, limit = 50) {
  return useQuery({
    queryKey: ['tags', name, cursor, limit],
    queryFn: () => getPage<Tag>(`${repoPath(name)}/tags${query({ limit, cursor })}`),
    ...live,
  });
}

export function useTag(name: string, tag: string) {
  return useQuery({
    queryKey: ['tag', name, tag],
    queryFn: () => getJson<TagDetail>(`${repoPath(name)}/tags/${encodeURIComponent(tag)}`),
    refetchInterval: POLL_MS,
    retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
  });
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
  return useQuery({
    queryKey: ['events', cursor, limit],
    queryFn: () => getPage<AuditEvent>(`/api/events${query({ limit, cursor })}`),
    ...live,
  });
}

export function useTokens() {
  return useQuery({
    queryKey: ['tokens'],
    queryFn: () => getJson<Token[]>('/api/tokens'),
    ...live,
  });
}

export interface NewToken {
  name: string;
  scopes: Scope[];
  repoPattern: string;
  expiresIn?: string;
}

export function useCreateToken() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (t: NewToken) =>
      (await send<CreatedToken>('POST', '/api/tokens', t)) as CreatedToken,
    onSuccess: () => client.invalidateQueries({ queryKey: ['tokens'] }),
  });
}

export function useRevokeToken() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: number) => send('DELETE', `/api/tokens/${id}`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['tokens'] }),
  });
}
