// An independent tus 1.0.0 server for the Rust tus client's tests: @tus/server with
// @tus/file-store, on 127.0.0.1. Usage: node tus-server.mjs DIR. Prints "listening PORT" once
// it accepts connections; uploads live under DIR (bytes in DIR/<id>, metadata in DIR/<id>.json).
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node tus-server.mjs DIR');
  process.exit(2);
}
const server = new Server({
  path: '/files',
  datastore: new FileStore({ directory: dir }),
});
const http = server.listen({ host: '127.0.0.1', port: 0 }, () => {
  console.log(`listening ${http.address().port}`);
});
