/**
 * proto/api.proto must reproduce the CRI wire schema exactly: same package, services, RPCs
 * (with streaming flags), messages, enums, field names, numbers, types, repeated rules and
 * map shapes. The schema ships in ../shared/cri-api beside the checkout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';

const repo = path.resolve(__dirname, '..', '..', '..');
const schemaFile = path.resolve(repo, '..', 'shared', 'cri-api', 'runtime-v1.json');

type Json = Record<string, unknown>;

/** Field keys by their proto (snake_case) name; drops protobufjs' camelCase aliasing. */
function normalize(ns: Json): Json {
  const out: Json = {};
  for (const [name, raw] of Object.entries((ns.nested ?? {}) as Record<string, Json>)) {
    const def = { ...raw };
    if (def.fields) {
      const fields: Json = {};
      for (const [fname, f] of Object.entries(def.fields as Record<string, Json>)) {
        const { protoName, comment: _c, ...rest } = f;
        void _c;
        fields[(protoName as string | undefined) ?? fname] = rest;
      }
      def.fields = fields;
    }
    if (def.methods) {
      const methods: Json = {};
      for (const [mname, m] of Object.entries(def.methods as Record<string, Json>)) {
        const { comment: _c, ...rest } = m;
        void _c;
        methods[mname] = rest;
      }
      def.methods = methods;
    }
    delete def.comment;
    delete def.comments;
    if (def.nested) def.nested = normalize(def);
    out[name] = def;
  }
  return out;
}

test('proto/api.proto matches the CRI runtime.v1 wire schema', { skip: !fs.existsSync(schemaFile) && 'schema not beside the checkout' }, () => {
  const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8')) as Json;
  const root = new protobuf.Root().loadSync(path.join(repo, 'proto', 'api.proto'), { keepCase: true });
  root.resolveAll();
  const ours = (root.toJSON() as Json).nested as Record<string, Json>;
  const want = (schema.nested as Record<string, Json>).runtime.nested as Record<string, Json>;
  const a = normalize((ours.runtime.nested as Record<string, Json>).v1);
  const b = normalize(want.v1);
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  // JSON round trip: protobufjs builds some objects without a prototype.
  for (const key of Object.keys(b)) assert.deepEqual(JSON.parse(JSON.stringify(a[key])), b[key], key);
});
