#!/usr/bin/env node
// Check the Microsoft Sentinel analytics rules (infra/sentinel/rules.json) with Microsoft's own
// Kusto parser and semantic analyzer (Kusto.Language, on npm as @kusto/language-service-next)
// against the tables they read (infra/sentinel/tables.json: the custom table the templates create
// and Entra's documented AuditLogs): a syntax error, an unknown table, column or function, a rule
// that is not exactly one query, or an entity mapping naming a column the query does not return
// fails.
//
// Usage: node scripts/check-kql.js [RULES.json [TABLES.json]]   (defaults: infra/sentinel/…)
// Exit codes: 0 every rule is clean; 1 a rule failed; 2 the input or the library is unusable.
'use strict';

const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`check-kql: ${msg}\n`);
  process.exit(2);
}

const root = path.resolve(__dirname, '..');
const rulesFile = process.argv[2] || path.join(root, 'infra/sentinel/rules.json');
const tablesFile = process.argv[3] || path.join(root, 'infra/sentinel/tables.json');
let rules;
let tables;
try {
  rules = JSON.parse(fs.readFileSync(rulesFile, 'utf8'));
  tables = JSON.parse(fs.readFileSync(tablesFile, 'utf8'));
} catch (e) {
  die(e.message);
}
if (!Array.isArray(rules) || rules.length === 0) die(`${rulesFile}: not a non-empty array of rules`);

// The value the templates give each placeholder by default (infra/modules/sentinel.bicep).
const PLACEHOLDERS = { maxUsersPerCallerHour: '5' };

// bridge.min.js installs the Bridge.NET runtime as globals; the library then registers itself as
// the global `Kusto` (requiring the package's main alone throws "Bridge is not defined").
try {
  require('@kusto/language-service-next/bridge.min.js');
  require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');
} catch (e) {
  die(`cannot load @kusto/language-service-next (npm ci): ${e.message}`);
}
/* global Kusto, Bridge */
const K = Kusto.Language;
const S = K.Symbols;

const members = [];
for (const [name, cols] of Object.entries(tables)) {
  if (name.startsWith('_')) continue;
  const columns = Object.entries(cols).map(([col, type]) => {
    const symbol = S.ScalarTypes.GetSymbol(String(type).toLowerCase());
    if (!symbol) die(`${tablesFile}: ${name}.${col}: unknown type ${type}`);
    return new S.ColumnSymbol(col, symbol, null, null, null, null);
  });
  members.push(new S.TableSymbol.$ctor4(name, columns));
}
const globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.$ctor2('db', null, members));

const list = (l) => Array.from({ length: l.Count }, (_, i) => l.getItem(i));

function problems(rule) {
  const out = [];
  if (!Array.isArray(rule.query) || rule.query.some((l) => typeof l !== 'string')) {
    return ['query: must be an array of lines'];
  }
  let text = rule.query.join('\n');
  text = text.replace(/\{\{(\w+)\}\}/g, (m, name) => {
    if (!(name in PLACEHOLDERS)) out.push(`unknown placeholder ${m}`);
    return PLACEHOLDERS[name] || '0';
  });
  if (text.trim() === '') return ['the query is empty'];
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  for (const d of list(code.GetDiagnostics())) {
    if (d.Severity !== 'Error' && d.Severity !== 'Warning') continue;
    let where = '';
    if (d.HasLocation && d.Start >= 0) {
      const before = text.slice(0, d.Start).split('\n');
      where = `line ${before.length}, column ${before[before.length - 1].length + 1}: `;
    }
    out.push(`${where}${d.Severity.toLowerCase()} ${d.Code}: ${d.Message}`);
  }
  if (code.Kind !== 'Query') {
    out.push(`not a query (${code.Kind})`);
    return out;
  }
  const statements = list(code.Syntax.Statements).map((s) => s.Element);
  const queries = statements.filter((s) => Bridge.is(s, K.Syntax.ExpressionStatement));
  if (queries.length !== 1) out.push(`${queries.length} query statements: a rule returns exactly one result`);
  // Entity mappings name columns of the result.
  const result = code.ResultType;
  if (result && Bridge.is(result, S.TableSymbol)) {
    const returned = new Set(list(result.Columns).map((c) => c.Name));
    for (const m of rule.entityMappings || []) {
      for (const f of m.fieldMappings || []) {
        if (!returned.has(f.columnName)) {
          out.push(`entity ${m.entityType}.${f.identifier} maps column ${f.columnName}, which the query does not return (it returns ${[...returned].join(', ')})`);
        }
      }
    }
  } else {
    out.push('the query does not return a table');
  }
  return out;
}

let failed = 0;
for (const rule of rules) {
  const found = problems(rule);
  if (found.length > 0) {
    failed++;
    for (const p of found) process.stderr.write(`${rule.id}: ${p}\n`);
  } else {
    process.stdout.write(`ok   ${rule.id}\n`);
  }
}
process.stdout.write(`check-kql: ${rules.length} rules, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
