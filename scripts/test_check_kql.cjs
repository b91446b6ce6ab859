#!/usr/bin/env node
// The KQL check refuses each planted fault: a misspelled column, a syntax error, an unknown
// function, an unknown table, a second query, and an entity mapping to a column the query does not
// return; and passes the rules as shipped.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const rules = JSON.parse(fs.readFileSync(path.join(root, 'infra/sentinel/rules.json'), 'utf8'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check-kql-'));

function run(rulesValue) {
  const file = path.join(dir, 'rules.json');
  fs.writeFileSync(file, JSON.stringify(rulesValue));
  return spawnSync(process.execPath, [path.join(__dirname, 'check-kql.js'), file], { encoding: 'utf8' });
}

function planted(name, change, expect) {
  const copy = JSON.parse(JSON.stringify(rules));
  change(copy);
  const r = run(copy);
  if (r.status !== 1 || !expect.test(r.stderr)) {
    process.stderr.write(`check-kql accepted the planted fault "${name}" (exit ${r.status}):\n${r.stdout}${r.stderr}\n`);
    process.exit(1);
  }
  process.stdout.write(`refused: ${name}\n`);
}

const shipped = run(rules);
if (shipped.status !== 0) {
  process.stderr.write(`the shipped rules fail:\n${shipped.stderr}\n`);
  process.exit(1);
}
const edit = (id, from, to) => (rs) => {
  const rule = rs.find((r) => r.id === id);
  const text = rule.query.join('\n');
  if (!text.includes(from)) throw new Error(`${id} has no ${from}`);
  rule.query = text.replace(from, to).split('\n');
};
planted('a misspelled column', edit('agent-recovers-many-users', 'TargetObjectId', 'TargetObjectID'), /TargetObjectID/);
planted('a misspelled AuditLogs column', edit('recovery-then-new-method-new-ip', 'InitiatedBy.user.ipAddress', 'InitiatedFrom.user.ipAddress'), /InitiatedFrom/);
planted('a syntax error', edit('user-said-not-me', '| where tostring(Details.decision)', '| where and tostring(Details.decision)'), /error/);
planted('an unknown function', edit('wrong-codes-across-users', 'dcount(RequestId)', 'distinct_count(RequestId)'), /distinct_count/);
planted('an unknown table', edit('privileged-recovery-attempt', 'MfaRecoveryAudit_CL', 'MfaRecoveryAudits_CL'), /MfaRecoveryAudits_CL/);
planted('two queries', (rs) => rs[0].query.push('; MfaRecoveryAudit_CL | take 1'), /query statements/);
planted('an entity mapping to a column not returned', (rs) => {
  rs.find((r) => r.id === 'user-said-not-me').entityMappings[0].fieldMappings[0].columnName = 'CallerUpn';
}, /CallerUpn/);
process.stdout.write('check-kql refuses each planted fault: ok\n');
