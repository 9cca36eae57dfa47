// Checking a manifest against its JSON Schema (manifest.schema.js, generated from the Python task specs):
// the keywords that generator writes, with the same verdicts and key paths as the Python runtime's
// lexiedge_runtime/tasks/sections.py `check`, so both runtimes refuse the same manifests the same way.

import { MANIFEST_SCHEMA } from './manifest.schema.js';

const NAMES = {
  object: 'a mapping', array: 'a list', string: 'a string', boolean: 'true or false', integer: 'a whole number',
  number: 'a number', null: 'null',
};
const TYPES = {
  object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  array: (v) => Array.isArray(v),
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  null: (v) => v === null,
};

/** [key path, what is wrong] for the first rule ``value`` breaks, else null. */
export function schemaProblem(value, schema = MANIFEST_SCHEMA) {
  for (const check of [checkType, checkValue, checkObject, checkArray, checkCombined]) {
    const problem = check(schema, value);
    if (problem) return problem;
  }
  return null;
}

function shown(value) {
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object' && value !== null) return 'dict';
  if (typeof value === 'string') return `'${value}'`.slice(0, 80);
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value).slice(0, 80);
}

function checkType(schema, value) {
  if (schema.type !== undefined && !TYPES[schema.type](value)) {
    return ['', `expected ${NAMES[schema.type]}, got ${shown(value)}`];
  }
  return null;
}

function same(value, expected) {
  return typeof value === typeof expected && value === expected;
}

function checkValue(schema, value) {
  if ('const' in schema && !same(value, schema.const)) {
    return ['', `expected ${shown(schema.const)}, got ${shown(value)}`];
  }
  if ('enum' in schema && !schema.enum.some((option) => same(value, option))) {
    return ['', `expected one of ${schema.enum.map(shown).join(', ')}, got ${shown(value)}`];
  }
  if (typeof value === 'number') {
    if ('minimum' in schema && value < schema.minimum) return ['', `expected a value >= ${schema.minimum}, got ${value}`];
    if ('maximum' in schema && value > schema.maximum) return ['', `expected a value <= ${schema.maximum}, got ${value}`];
    if ('exclusiveMinimum' in schema && value <= schema.exclusiveMinimum) {
      return ['', `expected a value above ${schema.exclusiveMinimum}, got ${value}`];
    }
  }
  if (typeof value === 'string' && 'pattern' in schema && !new RegExp(schema.pattern, 'u').test(value)) {
    return ['', `expected a string matching ${schema.pattern}, got ${shown(value)}`];
  }
  return null;
}

function join(name, rest) {
  if (!rest) return name;
  return rest.startsWith('[') ? `${name}${rest}` : `${name}.${rest}`;
}

function checkObject(schema, value) {
  if (!TYPES.object(value)) return null;
  const keys = Object.keys(value);
  if ('minProperties' in schema && keys.length < schema.minProperties) {
    return ['', `expected at least ${schema.minProperties} entry(ies), got ${keys.length}`];
  }
  for (const name of schema.required ?? []) {
    if (!(name in value)) return [name, 'missing'];
  }
  for (const name of keys) {
    const inner = schema.properties?.[name] ?? schema.additionalProperties;
    if (TYPES.object(inner)) {
      const problem = schemaProblem(value[name], inner);
      if (problem) return [join(name, problem[0]), problem[1]];
    }
  }
  return null;
}

function checkArray(schema, value) {
  if (!Array.isArray(value)) return null;
  if ('minItems' in schema && value.length < schema.minItems) {
    return ['', `expected at least ${schema.minItems} item(s), got ${value.length}`];
  }
  if ('maxItems' in schema && value.length > schema.maxItems) {
    return ['', `expected at most ${schema.maxItems} item(s), got ${value.length}`];
  }
  for (const [position, item] of value.entries()) {
    const problem = schemaProblem(item, schema.items ?? {});
    if (problem) return [`[${position}]${problem[0] ? `.${problem[0]}` : ''}`, problem[1]];
  }
  return null;
}

function checkCombined(schema, value) {
  if (schema.anyOf) {
    const problems = schema.anyOf.map((option) => schemaProblem(value, option));
    if (problems.every((problem) => problem !== null)) {
      return problems.reduce((best, problem) => (problem[0].length > best[0].length ? problem : best));
    }
  }
  for (const part of schema.allOf ?? []) {
    if (part.if && schemaProblem(value, part.if)) continue;
    const problem = schemaProblem(value, part.then ?? part);
    if (problem) return problem;
  }
  return null;
}
