#!/usr/bin/env node
// oracle_mutate.mjs — changes an existing fixture database with the REAL s3db.js (21.6.2), so the
// incremental round-trip tests diff against changes made exactly as an application would make them.
//
// Usage (run by tests/oracle.py:run_script, which puts a copy of this file in the oracle folder so
// that `import 's3db.js'` resolves, and runs it with the oracle's Node 24):
//   node oracle_mutate.mjs <connection string> [passphrase]
//
// The resources touched are re-declared exactly as make-fixtures.mjs declares them (same attributes,
// behaviour and partitions -> same definition hash -> no new schema version); `counters` must be
// re-declared because its incremental id generator is not persisted in s3db.json.
// Prints one JSON line with what was done (ids generated).

import { S3db } from 's3db.js';

const [conn, passphraseArg] = process.argv.slice(2);
if (!conn) {
  console.error('usage: oracle_mutate.mjs <connection string> [passphrase]');
  process.exit(2);
}
const PASSPHRASE = passphraseArg || 'fixture-passphrase-2024';
// Same transport choice as make-fixtures.mjs for S3 (recker mis-handles 204s in this setup).
const extra = conn.startsWith('file:') ? {} : { clientOptions: { httpClientOptions: { useReckerHandler: false } } };

async function main() {
  const db = new S3db({ connectionString: conn, logLevel: 'silent', security: { passphrase: PASSPHRASE }, ...extra });
  await db.connect();

  // -- re-declarations (copied from make-fixtures.mjs populate()) --------------------------------
  // connect() has already built every resource from s3db.json. Re-declaring one of those with
  // createResource() (what an application does after a restart) goes through s3db.js 21.6.2's
  // "existing resource" path, which (1) ignores `idGenerator` — it is not persisted in s3db.json,
  // so `counters` would silently fall back to random ids — and (2) registers the partition hooks a
  // second time: every reference is then written/deleted twice, and on S3 the second delete HEADs
  // the already-deleted reference, gets 404 and retries with backoff (~7 s per reference).
  // Dropping the connect()-made instances first makes createResource() build them anew, exactly
  // as make-fixtures.mjs did (same definition hash -> no new version; version taken from s3db.json).
  for (const name of ['users', 'articles', 'counters']) delete db._resourcesMap[name];
  const users = await db.createResource({
    name: 'users',
    timestamps: true,
    asyncPartitions: false,
    partitions: {
      byCountry: { fields: { country: 'string' } },
      byCity: { fields: { 'profile.city': 'string' } },
    },
    attributes: {
      name: 'string|min:1',
      email: 'email',
      age: 'number|integer|optional',
      score: 'number|optional',
      active: 'boolean',
      status: 'string',
      country: 'string',
      tags: 'array|items:string|optional',
      lucky: 'array|items:number|integer:true|optional',
      weights: 'array|items:number|optional',
      profile: {
        city: 'string',
        bio: 'string|optional',
        links: { site: 'url|optional' },
      },
      settings: 'json|optional',
      apiKey: 'secret|optional',
      password: 'password|optional',
      website: 'url|optional',
    },
  });
  const articles = await db.createResource({
    name: 'articles',
    behavior: 'body-overflow',
    asyncPartitions: false,
    partitions: { byCategory: { fields: { category: 'string' } } },
    attributes: {
      title: 'string',
      category: 'string',
      content: 'string',
      views: 'number|integer|optional',
      rating: 'number|optional',
      tags: 'array|items:string|optional',
      author: { name: 'string', email: 'email|optional' },
    },
  });
  const counters = await db.createResource({
    name: 'counters',
    idGenerator: 'incremental',
    asyncPartitions: false,
    attributes: { label: 'string', value: 'number|optional' },
  });

  const done = {};
  // 1. updates that move records between partitions
  await users.update('u3', { country: 'JP', profile: { city: 'Osaka' }, score: 99.5 });
  await articles.update('a3', { category: 'science', views: 7 });
  // 2. deletes: one record with a partition reference, one without. (On S3, s3db.js 21.6.2 deletes
  // each partition reference twice — once in delete(), once in the afterDelete hook — and the
  // second pass HEADs the gone reference, gets 404 and retries with 1+2+4 s backoff: ~7 s per
  // reference, so users (4 partitions) would cost ~28 s and is left alone here.)
  await articles.delete('a2');
  await db.resources.quirks.delete('q4');
  // 3. inserts: a user with a secret, and a counter through the incremental generator
  const u6 = await users.insert({
    id: 'u6', name: 'Nova Pessoa', email: 'nova@example.com', age: 30, active: true, status: 'active',
    country: 'PT', profile: { city: 'Lisboa', bio: 'inserida depois' }, apiKey: 'third-secret', tags: ['new'],
  });
  done.users = u6.id;
  const c = await counters.insert({ label: 'fourth', value: 4.5 });
  done.counter = c.id;
  // 4. a NEW resource, with a partition
  const tasks = await db.createResource({
    name: 'tasks',
    asyncPartitions: false,
    partitions: { byState: { fields: { state: 'string' } } },
    attributes: { title: 'string', state: 'string', due: 'datetime|optional', estimate: 'number|optional' },
  });
  await tasks.insert({ id: 't1', title: 'write tests', state: 'open', estimate: 2.5 });
  await tasks.insert({ id: 't2', title: 'fix bugs — ünïcödé', state: 'done', due: '2025-05-06T07:08:09.010Z' });
  await tasks.insert({ id: 't3', title: 'ship', state: 'open' });
  done.tasks = ['t1', 't2', 't3'];

  await db.disconnect();
  console.log(JSON.stringify(done));
  process.exit(0); // s3db.js keeps some timers alive
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
