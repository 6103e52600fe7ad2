import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from 'react';

/** The dashboard's pages, parsed from the URL path. */
export type Route =
  | { page: 'dashboard' }
  | { page: 'repositories' }
  | { page: 'repository'; name: string }
  | { page: 'tag'; name: string; tag: string }
  | { page: 'tokens' }
  | { page: 'audit' }
  | { page: 'about' }
  | { page: 'signin' }
  | { page: 'not-found' };

/*
 * Repository names contain slashes, so a tag is set apart by a `-` segment, which the
 * distribution grammar never allows as a path component: /repositories/team/live/-/v1.
 */
export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/') return { page: 'dashboard' };
  if (path === '/repositories') return { page: 'repositories' };
  if (path === '/tokens') return { page: 'tokens' };
  if (path === '/audit') return { page: 'audit' };
  if (path === '/about') return { page: 'about' };
  if (path === '/signin') return { page: 'signin' };
  const repo = /^\/repositories\/(.+?)(?:\/-\/([^/]+))?$/.exec(path);
  if (repo?.[1]) {
    const name = safeDecode(repo[1]);
    if (repo[2]) return { page: 'tag', name, tag: safeDecode(repo[2]) };
    return { page: 'repository', name };
  }
  return { page: 'not-found' };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Links to pages, encoding each name segment. */
export const href = {
  repository: (name: string) =>
    `/repositories/${name.split('/').map(encodeURIComponent).join('/')}`,
  tag: (name: string, tag: string) => `${href.repository(name)}/-/${encodeURIComponent(tag)}`,
};

const listeners = new Set<() => void>();
function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}
const snapshot = () => window.location.pathname + window.location.search;

/** The current path and query string; re-renders on navigation. */
export function useLocation(): URL {
  const current = useSyncExternalStore(subscribe, snapshot, snapshot);
  return new URL(current, window.location.origin);
}

/** Goes to `to` within the app (pushes history, or replaces it). */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  for (const l of listeners) l();
  if (!options.replace) window.scrollTo?.(0, 0);
}

/** An `<a>` that navigates in-app on a plain click and behaves like a link otherwise. */
export function Link({
  href: to,
  onClick,
  ...rest
}: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey)
      return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={handle} {...rest} />;
}
