import { ApiError } from '../core/operations/api-error';
import type { RouteGroup } from './contract';

/** A request as the routes read it: API Gateway's proxy event, reduced (the local server builds the same). */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  /** The raw body (API Gateway hands binary bodies base64-encoded; decoded here). */
  readonly body: Buffer;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** A route: its method and path pattern (path parameters as named groups), its group, and what it does. */
export interface Route {
  readonly method: 'GET' | 'POST';
  /** The path template, as API Gateway's resources and the metrics name it, e.g. `/v1/files/{fileId}`. */
  readonly template: string;
  readonly group: RouteGroup;
  readonly handle: (request: ApiRequest, params: Readonly<Record<string, string>>) => Promise<ApiAnswer>;
}

/** `/v1/files/{fileId}` -> a pattern whose named groups are the path parameters (one path segment each). */
function patternOf(template: string): RegExp {
  const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, '(?<$1>[^/]+)');
  return new RegExp(`^${source}/?$`);
}

/**
 * Finds the route for a request among those this function serves: a path no route has, or a group this function
 * does not serve (on AWS each group is its own function behind its own resources), is 404; a known path with
 * another method is 404 too, naming the methods it has.
 */
export function matchRoute(
  routes: readonly Route[],
  request: Pick<ApiRequest, 'method' | 'path'>,
): { route: Route; params: Record<string, string> } {
  const methods: string[] = [];
  for (const route of routes) {
    const match = patternOf(route.template).exec(request.path);
    if (!match) continue;
    if (route.method !== request.method) {
      methods.push(route.method);
      continue;
    }
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(match.groups ?? {})) {
      try {
        params[name] = decodeURIComponent(value);
      } catch {
        throw new ApiError('BadRequest', `${name}: not a valid URL-encoded path segment (${value})`);
      }
    }
    return { route, params };
  }
  if (methods.length > 0) {
    throw new ApiError('NotFound', `${request.path} answers ${methods.join(', ')}, not ${request.method}`);
  }
  throw new ApiError('NotFound', `no route ${request.method} ${request.path}`);
}

/** A JSON body, or 400 naming what is wrong with it. */
export function jsonBody(request: ApiRequest): unknown {
  const text = request.body.toString('utf8');
  if (!text.trim()) throw new ApiError('BadRequest', 'body: a JSON object is required');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError('BadRequest', `body: not JSON (${(error as Error).message})`);
  }
}
