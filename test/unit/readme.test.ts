import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigSchema, SETTINGS } from '../../lambdas/core/config';
import { DeployedPollSourceSchema } from '../../lib/config';

describe('README', () => {
  // Prettier pads table cells: compare with runs of spaces collapsed.
  const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8').replace(/ +/g, ' ');

  it('documents every setting with its variable, flag, context key and default', () => {
    const defaults = ConfigSchema.parse({}) as Record<string, unknown>;
    for (const [key, setting] of Object.entries(SETTINGS)) {
      const value = defaults[key];
      const shown = value === undefined ? '—' : Array.isArray(value) ? value.join(',') : String(value);
      expect(readme).toContain(`| \`${setting.env}\` | \`--${setting.flag}\` | \`${key}\` | ${shown}`);
    }
  });
});

describe('README example source', () => {
  it('is a valid pollSources entry', () => {
    const text = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    const block = /```json\n"pollSources": (\[[\s\S]*?\])\n```/.exec(text);
    expect(block).not.toBeNull();
    const sources = z.array(DeployedPollSourceSchema).parse(JSON.parse(block![1]!));
    expect(sources[0]).toMatchObject({ name: 'acme-sftp', partner: 'acme', completeWhen: 'stable' });
  });
});
