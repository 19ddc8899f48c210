import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigSchema, SETTINGS } from '../../lambdas/core/config';

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
