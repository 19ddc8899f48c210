import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigSchema, SETTINGS } from '../../lambdas/core/config';
import { DeployedPollSourceSchema } from '../../lib/config';

const root = join(__dirname, '../..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

describe('docs/configuration.md', () => {
  // Prettier pads table cells: compare with runs of spaces collapsed.
  const configuration = read('docs/configuration.md').replace(/ +/g, ' ');

  it('documents every setting with its variable, flag, context key and default', () => {
    const defaults = ConfigSchema.parse({}) as Record<string, unknown>;
    for (const [key, setting] of Object.entries(SETTINGS)) {
      const value = defaults[key];
      const shown =
        value === undefined || (typeof value === 'object' && Object.keys(value as object).length === 0)
          ? '—'
          : Array.isArray(value)
            ? value.join(',')
            : String(value);
      expect(configuration).toContain(`| \`${setting.env}\` | \`--${setting.flag}\` | \`${key}\` | ${shown}`);
    }
  });
});

describe('docs/deploy.md example source', () => {
  it('is a valid pollSources entry', () => {
    const text = read('docs/deploy.md');
    const block = /```json\n"pollSources": (\[[\s\S]*?\])\n```/.exec(text);
    expect(block).not.toBeNull();
    const sources = z.array(DeployedPollSourceSchema).parse(JSON.parse(block![1]!));
    expect(sources[0]).toMatchObject({ name: 'acme-sftp', partner: 'acme', completeWhen: 'stable' });
  });
});

/** The text outside fenced code blocks, line by line (a fence's lines become empty, so line numbers hold). */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined) {
      if (marker) fence = marker;
      return marker ? '' : line;
    }
    if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) {
      fence = undefined;
    }
    return '';
  });
}

/** GitHub's heading anchor: the heading's text, lower-cased, punctuation dropped, spaces made hyphens. */
function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`([^`]*)`/g, '$1') // code spans: their content
    .replace(/<[^>]+>/g, ''); // inline HTML tags
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a markdown file's headings make, with GitHub's -1, -2 suffixes for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** The targets of a file's inline links and images and of its link reference definitions. */
function linkTargets(markdown: string): { line: number; target: string }[] {
  const targets: { line: number; target: string }[] = [];
  proseLines(markdown).forEach((text, index) => {
    const line = text.replace(/`[^`]*`/g, ''); // no links inside code spans
    for (const match of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+["'(][^)]*)?\)/g)) {
      targets.push({ line: index + 1, target: match[1]! });
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line);
    if (definition) targets.push({ line: index + 1, target: definition[1]! });
  });
  return targets;
}

describe('markdown links', () => {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`);
  const files = ['README.md', ...docs];

  it('point at files that exist and at headings that exist in them', () => {
    // The anchors are GitHub's: check the slugs against a few it makes.
    expect(githubSlug('`ingest run`: real files, one machine')).toBe('ingest-run-real-files-one-machine');
    expect(githubSlug("Partners' own SFTP servers (polling)")).toBe('partners-own-sftp-servers-polling');
    expect(githubSlug('SFTP → CRM ingestion')).toBe('sftp--crm-ingestion');
    expect(githubSlug('`--poll`: collect from a partner’s own SFTP server')).toBe(
      '--poll-collect-from-a-partners-own-sftp-server',
    );

    const broken: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const { line, target } of linkTargets(read(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // absolute URL
        checked += 1;
        const hash = target.indexOf('#');
        const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
        const fragment = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
        const resolved = path === '' ? join(root, file) : resolve(root, dirname(file), path);
        const where = `${file}:${line} → ${target}`;
        if (relative(root, resolved).startsWith('..')) {
          broken.push(`${where}: outside the repository`);
        } else if (!existsSync(resolved)) {
          broken.push(`${where}: no such file`);
        } else if (fragment !== undefined && resolved.endsWith('.md') && statSync(resolved).isFile()) {
          if (!anchorsOf(readFileSync(resolved, 'utf8')).has(fragment)) {
            broken.push(`${where}: no heading with that anchor`);
          }
        }
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(files.length);
  });
});
