import { describe, expect, it } from 'vitest';
import { giteaNextPage } from '../../src/hosts/gitea.transport.ts';

const headers = (values: Record<string, string>) => new Headers(values);

describe('the page after a page of Gitea deploy keys', () => {
  it('follows a Link header when the server sends one', () => {
    const link =
      '<https://git.example.com/api/v1/repos/acme/models/keys?limit=50&page=3>; rel="next", ' +
      '<https://git.example.com/api/v1/repos/acme/models/keys?limit=50&page=9>; rel="last"';
    expect(giteaNextPage(headers({ link, 'x-total-count': '999' }), 2, 50, 50)).toBe(3);
  });

  it('counts from X-Total-Count, stopping at a partial or exactly full last page', () => {
    expect(giteaNextPage(headers({ 'x-total-count': '120' }), 1, 50, 50)).toBe(2);
    expect(giteaNextPage(headers({ 'x-total-count': '120' }), 2, 50, 50)).toBe(3);
    expect(giteaNextPage(headers({ 'x-total-count': '120' }), 3, 20, 50)).toBeUndefined();
    expect(giteaNextPage(headers({ 'x-total-count': '100' }), 2, 50, 50)).toBeUndefined();
  });

  it('keeps paging at the size a server capped our limit to', () => {
    // MAX_RESPONSE_ITEMS lowered to 30: page 3 of 100 keys starts at 60.
    expect(giteaNextPage(headers({ 'x-total-count': '100' }), 3, 30, 30)).toBe(4);
    expect(giteaNextPage(headers({ 'x-total-count': '100' }), 4, 10, 30)).toBeUndefined();
  });

  it('ends on an empty page, and without any count, on a page that is not full', () => {
    expect(giteaNextPage(headers({ 'x-total-count': '500' }), 7, 0, 50)).toBeUndefined();
    expect(giteaNextPage(headers({}), 1, 50, 50)).toBe(2);
    expect(giteaNextPage(headers({}), 2, 12, 50)).toBeUndefined();
  });
});
