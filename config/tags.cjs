/**
 * The stack's tags: `service` and `stage` always, plus the stage file's `tags` map. One source for the
 * functions (`provider.tags`), the stack (`provider.stackTags`: CloudFormation copies them onto every
 * resource that takes tags, log groups and roles included) and the explicit `Tags` of the queues, the
 * alarm topic, the alarms, the dashboard and the event source mappings, so that the packaged template
 * itself shows them (test/integration/package.test.ts reads it).
 *
 *   provider.tags: ${file(./config/tags.cjs):map}      # { service, stage, …stage tags }
 *   Tags: ${file(./config/tags.cjs):list}              # [{ Key, Value }, …]
 */
'use strict';

const RESERVED = new Set(['service', 'stage']);

/** @param {{ resolveVariable: (v: string) => Promise<unknown> }} ctx */
async function tagMap({ resolveVariable }) {
  const [service, stage, extra] = await Promise.all([
    resolveVariable('self:service'),
    resolveVariable('sls:stage'),
    resolveVariable('self:custom.stage.tags'),
  ]);
  if (extra !== null && (typeof extra !== 'object' || Array.isArray(extra))) {
    throw new Error(`config/stages/${stage}.yml: tags must be a map of tag names to values`);
  }
  /** @type {Record<string, string>} */
  const tags = { service: String(service), stage: String(stage) };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (RESERVED.has(key)) {
      throw new Error(`config/stages/${stage}.yml: tag "${key}" is set by the stack itself`);
    }
    if (value === null || typeof value === 'object') {
      throw new Error(`config/stages/${stage}.yml: tag "${key}" must be a string`);
    }
    tags[key] = String(value);
  }
  return tags;
}

/** @param {{ resolveVariable: (v: string) => Promise<unknown> }} ctx */
async function tagList(ctx) {
  return Object.entries(await tagMap(ctx)).map(([Key, Value]) => ({ Key, Value }));
}

module.exports = { map: tagMap, list: tagList };
