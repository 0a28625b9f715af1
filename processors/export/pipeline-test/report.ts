import type { PipelineResult } from './run.js';

/**
 * What `sluice test` prints: one line per case (`ok` / `FAIL`, file:line, name) with the
 * differences under a failed one; or TAP 13, or JUnit XML for CI.
 */

export interface Totals {
  passed: number;
  failed: number;
  errors: number;
}

export function totals(results: readonly PipelineResult[]): Totals {
  const t = { passed: 0, failed: 0, errors: 0 };
  for (const r of results) {
    t.errors += r.errors.length;
    for (const c of r.cases) c.failures.length === 0 ? t.passed++ : t.failed++;
  }
  return t;
}

export function textReport(results: readonly PipelineResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    for (const e of r.errors) out.push(`ERROR ${e}`);
    if (r.errors.length === 0 && r.cases.length === 0) out.push(`${r.pipeline}: no tests (write them under tests: or in ${r.pipeline.replace(/(\.ya?ml)$/, '_test$1')})`);
    for (const c of r.cases) {
      if (c.failures.length === 0) out.push(`ok   ${c.file}:${c.line} ${c.name}`);
      else {
        out.push(`FAIL ${c.file}:${c.line} ${c.name}`);
        for (const f of c.failures) {
          out.push(`     input ${f.input}:`);
          for (const l of f.lines) out.push(`       ${l}`);
        }
      }
    }
  }
  const t = totals(results);
  out.push(`${t.passed} passed, ${t.failed} failed${t.errors ? `, ${t.errors} error${t.errors === 1 ? '' : 's'}` : ''}`);
  return out.join('\n');
}

export function tapReport(results: readonly PipelineResult[]): string {
  const lines: string[] = [];
  let n = 0;
  for (const r of results) {
    for (const e of r.errors) {
      n++;
      lines.push(`not ok ${n} - ${r.pipeline}`, '  ---', `  message: ${JSON.stringify(e)}`, '  ...');
    }
    for (const c of r.cases) {
      n++;
      if (c.failures.length === 0) lines.push(`ok ${n} - ${c.name} # ${c.file}:${c.line}`);
      else {
        lines.push(`not ok ${n} - ${c.name} # ${c.file}:${c.line}`, '  ---', '  diff: |');
        for (const f of c.failures) for (const l of [`input ${f.input}:`, ...f.lines]) lines.push(`    ${l}`);
        lines.push('  ...');
      }
    }
  }
  return ['TAP version 13', `1..${n}`, ...lines].join('\n');
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function junitReport(results: readonly PipelineResult[]): string {
  const t = totals(results);
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="sluice test" tests="${t.passed + t.failed + t.errors}" failures="${t.failed}" errors="${t.errors}">`];
  for (const r of results) {
    const failed = r.cases.filter((c) => c.failures.length > 0).length;
    out.push(`  <testsuite name="${xml(r.pipeline)}" tests="${r.cases.length + r.errors.length}" failures="${failed}" errors="${r.errors.length}">`);
    for (const e of r.errors) out.push(`    <testcase name="${xml(r.pipeline)}" classname="${xml(r.pipeline)}"><error message="${xml(e)}"/></testcase>`);
    for (const c of r.cases) {
      const head = `    <testcase name="${xml(c.name)}" classname="${xml(r.pipeline)}" file="${xml(c.file)}" line="${c.line}"`;
      if (c.failures.length === 0) out.push(`${head}/>`);
      else {
        const body = c.failures.flatMap((f) => [`input ${f.input}:`, ...f.lines]).join('\n');
        out.push(`${head}>`, `      <failure message="${xml(c.failures[0]!.lines[0] ?? 'failed')}">${xml(body)}</failure>`, '    </testcase>');
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n');
}
