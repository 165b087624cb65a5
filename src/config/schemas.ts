/**
 * The JSON Schemas in the package's `config/` folder are the source of truth for the
 * YAML files (editors can use them too). They are read once, at first use, relative to
 * this module so the same code works from `src/` (tests) and `dist/` (installed).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JsonSchema } from './load-yaml.js';

const cache = new Map<string, JsonSchema>();

/** Absolute path of a schema file in the package's `config/` folder. */
export function schemaPath(name: 'qkdgw.schema.json' | 'kme-sim.schema.json'): string {
  return fileURLToPath(new URL(`../../config/${name}`, import.meta.url));
}

/**
 * The parsed schema (one shared object per name: do not mutate it).
 * @throws Error when the packaged schema is missing or not JSON (an installation fault).
 */
export function loadSchema(name: 'qkdgw.schema.json' | 'kme-sim.schema.json'): JsonSchema {
  let s = cache.get(name);
  if (!s) {
    s = JSON.parse(readFileSync(schemaPath(name), 'utf8')) as JsonSchema;
    cache.set(name, s);
  }
  return s;
}
