import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { README, withConfigTable } from '#scripts/docs.ts';

test('the README’s configuration table matches the settings the code accepts (run `npm run docs`)', () => {
  const readme = readFileSync(README, 'utf8');
  assert.equal(readme, withConfigTable(readme));
});
