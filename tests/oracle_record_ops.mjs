#!/usr/bin/env node
// oracle_record_ops.mjs — inserts, updates and deletes records with the REAL s3db.js (21.6.2), on
// the resources connect() builds from s3db.json (no re-declaration: see oracle_mutate.mjs).
//
// Usage (through tests/oracle.py:run_script):
//   node oracle_record_ops.mjs <connection string> '<JSON list of operations>'
// an operation: ["insert", resource, record] | ["update", resource, id, fields] | ["delete", resource, id]
// Prints one JSON line: the ids touched, in order.

import { S3db } from 's3db.js';

const [conn, opsArg] = process.argv.slice(2);
if (!conn || !opsArg) {
  console.error("usage: oracle_record_ops.mjs <connection string> '<operations JSON>'");
  process.exit(2);
}
const extra = conn.startsWith('file:') ? {} : { clientOptions: { httpClientOptions: { useReckerHandler: false } } };

async function main() {
  const db = new S3db({ connectionString: conn, logLevel: 'silent', security: { passphrase: 'fixture-passphrase-2024' }, ...extra });
  await db.connect();
  const touched = [];
  for (const [op, resource, ...rest] of JSON.parse(opsArg)) {
    const r = db.resources[resource];
    if (op === 'insert') touched.push((await r.insert(rest[0])).id);
    else if (op === 'update') touched.push((await r.update(rest[0], rest[1])).id);
    else if (op === 'delete') { await r.delete(rest[0]); touched.push(rest[0]); }
    else throw new Error(`unknown operation ${op}`);
  }
  await db.disconnect();
  console.log(JSON.stringify(touched));
  process.exit(0); // s3db.js keeps some timers alive
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
