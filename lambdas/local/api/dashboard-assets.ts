import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A file the dashboard page needs, as the local server sends it. */
export interface DashboardAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

const DASHBOARD_DIR = join(__dirname, '../dashboard');
// Through its package.json, so the path is the same whether the code runs from the repository, jest or tsx.
const UPLOT_DIR = join(dirname(require.resolve('uplot/package.json')), 'dist');

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/**
 * Every path the page loads, and where its file is: uPlot comes from node_modules, never a CDN, so the page works
 * offline (ops-api.md, The live dashboard).
 */
const ASSETS: Readonly<Record<string, { readonly file: string; readonly contentType: string }>> = {
  '/': { file: join(DASHBOARD_DIR, 'index.html'), contentType: HTML },
  '/dashboard.js': { file: join(DASHBOARD_DIR, 'dashboard.js'), contentType: JS },
  '/dashboard.css': { file: join(DASHBOARD_DIR, 'dashboard.css'), contentType: CSS },
  '/vendor/uplot.js': { file: join(UPLOT_DIR, 'uPlot.iife.min.js'), contentType: JS },
  '/vendor/uplot.css': { file: join(UPLOT_DIR, 'uPlot.min.css'), contentType: CSS },
};

const cache = new Map<string, DashboardAsset>();

/**
 * The dashboard's file for a request path (`/`, `/dashboard.js`, `/dashboard.css`, `/vendor/uplot.js`,
 * `/vendor/uplot.css`), read once and kept; undefined for any other path (the server answers 404).
 */
export function dashboardAsset(path: string): DashboardAsset | undefined {
  if (!Object.hasOwn(ASSETS, path)) return undefined;
  const cached = cache.get(path);
  if (cached) return cached;
  const { file, contentType } = ASSETS[path]!;
  const asset = { contentType, body: readFileSync(file) };
  cache.set(path, asset);
  return asset;
}
