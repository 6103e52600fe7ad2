import { expect, it } from 'vitest';
import { href, parseRoute } from '../src/router.js';

it('parses every page, repository names with slashes included', () => {
  expect(parseRoute('/')).toEqual({ page: 'dashboard' });
  expect(parseRoute('/repositories/')).toEqual({ page: 'repositories' });
  expect(parseRoute('/repositories/team/live')).toEqual({ page: 'repository', name: 'team/live' });
  expect(parseRoute('/repositories/a/b/c/-/v1.2')).toEqual({
    page: 'tag',
    name: 'a/b/c',
    tag: 'v1.2',
  });
  // `tags` is an ordinary path component of a name; only `-` separates the tag.
  expect(parseRoute('/repositories/x/tags/y')).toEqual({ page: 'repository', name: 'x/tags/y' });
  expect(parseRoute('/tokens')).toEqual({ page: 'tokens' });
  expect(parseRoute('/audit')).toEqual({ page: 'audit' });
  expect(parseRoute('/about')).toEqual({ page: 'about' });
  expect(parseRoute('/signin')).toEqual({ page: 'signin' });
  expect(parseRoute('/nope')).toEqual({ page: 'not-found' });
});

it('builds links that parse back to the same page', () => {
  expect(href.tag('team/live', 'v1')).toBe('/repositories/team/live/-/v1');
  for (const [name, tag] of [
    ['a/b', 'latest'],
    ['one', 'v_1.0-rc'],
  ] as const) {
    expect(parseRoute(href.tag(name, tag))).toEqual({ page: 'tag', name, tag });
    expect(parseRoute(href.repository(name))).toEqual({ page: 'repository', name });
  }
});
