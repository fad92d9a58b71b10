/**
 * Renders a Config as a commented TOML file, walking SCHEMA for key names, order and docs (as
 * CRI-O's template.go renders its config). Loading the output gives back an equal Config:
 * nulls are omitted and load back as null. The one exception is a Config without
 * [runtimes.native]: runtime tables merge over the defaults, so it comes back.
 */
import { stringify } from 'smol-toml';
import { type AnySpec, type Config, type RawTable, type TableSpec, ROOT, encode, formatPath } from './schema';

export function renderToml(config: Config): string {
  const out = ['# nodecri configuration.', '# Drop-ins in the config directory (*.toml, lexical order) override single keys of this file.'];
  // the TOML-shaped tree: snake_case keys, nulls already dropped
  renderTable(ROOT, encode(ROOT, config) as RawTable, [], out, true);
  return out.join('\n') + '\n';
}

/** A list of tables with entries goes below the scalars as [[key]] blocks; an empty one stays inline as []. */
function isNested(spec: AnySpec, v: unknown): boolean {
  if (spec.kind === 'table' || spec.kind === 'map') return true;
  return spec.kind === 'array' && spec.of.kind === 'table' && Array.isArray(v) && v.length > 0;
}

function comment(text: string): string[] {
  return text.split('\n').map((l) => (l === '' ? '#' : `# ${l}`));
}

/** `key = value` through smol-toml, so quoting and escapes follow its serializer. */
function assignment(key: string, value: unknown): string {
  return stringify({ [key]: value }).trimEnd();
}

function renderTable(spec: TableSpec, table: RawTable, at: string[], out: string[], docs: boolean): void {
  const doc = (text: string): void => {
    if (docs) out.push(...comment(text));
  };
  const nested: [string, AnySpec, string, unknown][] = [];
  for (const field of Object.values(spec.fields)) {
    const v = Object.hasOwn(table, field.key) ? table[field.key] : undefined;
    if (isNested(field.type, v)) {
      nested.push([field.key, field.type, field.doc, v]);
      continue;
    }
    doc(field.doc);
    if (v === undefined) {
      doc(`${field.key} is unset`);
      continue;
    }
    out.push(assignment(field.key, v));
    if (field.example !== undefined && Array.isArray(v) && v.length === 0) {
      doc(`for example, instead of the line above:\n${field.example}`);
    }
  }
  for (const [key, type, text, v] of nested) {
    const p = [...at, key];
    out.push('');
    doc(text);
    if (type.kind === 'table') {
      out.push(`[${formatPath(p)}]`);
      renderTable(type, v as RawTable, p, out, docs);
      continue;
    }
    const of = type.kind === 'map' || type.kind === 'array' ? type.of : null;
    if (of?.kind !== 'table') continue;
    // a blank line between entries; documenting the first entry is enough as the keys repeat
    if (type.kind === 'map') {
      Object.entries(v as RawTable).forEach(([name, entry], i) => {
        if (i > 0) out.push('');
        out.push(`[${formatPath([...p, name])}]`);
        renderTable(of, entry as RawTable, [...p, name], out, docs && i === 0);
      });
    } else {
      (v as RawTable[]).forEach((entry, i) => {
        if (i > 0) out.push('');
        out.push(`[[${formatPath(p)}]]`);
        renderTable(of, entry, p, out, docs && i === 0);
      });
    }
  }
}
