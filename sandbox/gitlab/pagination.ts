// GitLab offset pagination (`Gitlab::Pagination::OffsetPagination` over Kaminari): `page` and
// `per_page` (default 20, capped at 100), the `X-*` headers and a `Link` header whose URLs carry
// every request parameter, route `id` included, sorted by name as Rails' `to_query` does.
import { coerceInteger } from './deploy-keys.ts';

const DEFAULT_PER_PAGE = 20;
const MAX_PER_PAGE = 100;

export interface PageRequest {
  /** Origin and path the links point to, e.g. `http://127.0.0.1:1234/api/v4/projects/acme%2Fm/deploy_keys`. */
  baseUrl: string;
  /** Query parameters as received plus route parameters. */
  params: Record<string, string>;
}

export type PageResult<T> = { items: T[]; headers: Record<string, string> } | { error: string };

export function paginate<T>(all: T[], request: PageRequest): PageResult<T> {
  const errors: string[] = [];
  const rawPage = request.params.page;
  const rawPerPage = request.params.per_page;
  const askedPage = rawPage === undefined ? 1 : coerceInteger(rawPage);
  if (askedPage === undefined) errors.push('page is invalid');
  const askedPerPage = rawPerPage === undefined ? DEFAULT_PER_PAGE : coerceInteger(rawPerPage);
  if (askedPerPage === undefined) errors.push('per_page is invalid');
  if (errors.length > 0) return { error: errors.join(', ') };

  const page = Math.max(askedPage ?? 1, 1);
  const perPage = Math.min((askedPerPage ?? 0) < 1 ? DEFAULT_PER_PAGE : (askedPerPage ?? 0), MAX_PER_PAGE);
  const totalPages = Math.max(Math.ceil(all.length / perPage), 1);
  const outOfRange = page > totalPages;
  // Kaminari reports neither a previous nor a next page once the page is out of range.
  const nextPage = !outOfRange && page < totalPages ? page + 1 : undefined;
  const prevPage = !outOfRange && page > 1 ? page - 1 : undefined;

  const href = (target: number) => {
    const query = new URLSearchParams(
      Object.entries({ ...request.params, page: String(target), per_page: String(perPage) }).sort(
        ([a], [b]) => a.localeCompare(b),
      ),
    );
    return `${request.baseUrl}?${query.toString()}`;
  };
  const links: string[] = [];
  if (prevPage) links.push(`<${href(prevPage)}>; rel="prev"`);
  if (nextPage) links.push(`<${href(nextPage)}>; rel="next"`);
  links.push(`<${href(1)}>; rel="first"`);
  links.push(`<${href(totalPages)}>; rel="last"`);

  return {
    items: all.slice((page - 1) * perPage, page * perPage),
    headers: {
      'x-per-page': String(perPage),
      'x-page': String(page),
      'x-next-page': nextPage ? String(nextPage) : '',
      'x-prev-page': prevPage ? String(prevPage) : '',
      link: links.join(', '),
      'x-total': String(all.length),
      'x-total-pages': String(totalPages),
    },
  };
}
