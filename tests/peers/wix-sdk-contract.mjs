// Runs operations with the official Wix JS SDK (@wix/sdk with an API-key strategy, @wix/crm,
// @wix/media) against the Attaché sandbox, and prints, for each, the requests the sandbox
// recorded while the SDK performed it. The Rust contract test performs the same operations
// with the Rust client and compares the two records.
//
// Usage: node wix-sdk-contract.mjs BASE_URL API_KEY SITE_ID < plan.json
// plan.json: [{"op": "name", "args": {...}}, ...]; output: [{"op", "requests", "result"?, "error"?}]
import { createClient, ApiKeyStrategy, AppStrategy } from '@wix/sdk';
import { contacts, attachments } from '@wix/crm';
import { files } from '@wix/media';

const [base, apiKey, siteId] = process.argv.slice(2);
const plan = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (d) => (text += d));
  process.stdin.on('end', () => resolve(text));
}));

// Wix's API host becomes the sandbox; everything else about the request is the SDK's own.
const toSandbox = (url) => {
  const u = new URL(url);
  const b = new URL(base);
  u.protocol = b.protocol;
  u.host = b.host;
  return u.toString();
};
const realFetch = globalThis.fetch;
const sandboxFetch = (input, init) => {
  if (typeof input === 'string' || input instanceof URL) {
    return realFetch(toSandbox(input.toString()), init);
  }
  return realFetch(new Request(toSandbox(input.url), input), init);
};
// The app strategy mints its token with the global fetch, not the client's: route that too.
globalThis.fetch = sandboxFetch;

const wix = createClient({
  auth: ApiKeyStrategy({ apiKey, siteId }),
  modules: { contacts, attachments, files },
  fetch: sandboxFetch,
});

const ops = {
  // An app login (client credentials, then the call with the minted token).
  appGetContact: (a) =>
    createClient({
      auth: AppStrategy({ appId: a.appId, appSecret: a.appSecret, instanceId: a.instanceId }),
      modules: { contacts },
      fetch: sandboxFetch,
    }).contacts.getContact(a.id),
  listContacts: (a) => wix.contacts.listContacts(a.options),
  getContact: (a) => wix.contacts.getContact(a.id),
  queryContacts: (a) => {
    let q = wix.contacts.queryContacts();
    if (a.startsWith) q = q.startsWith(a.startsWith[0], a.startsWith[1]);
    if (a.ascending) q = q.ascending(a.ascending);
    if (a.limit) q = q.limit(a.limit);
    if (a.skip) q = q.skip(a.skip);
    return q.find();
  },
  generateAttachmentUploadUrl: (a) =>
    wix.attachments.generateAttachmentUploadUrl(a.contactId, a.fileName, { mimeType: a.mimeType }),
  listAttachments: (a) => wix.attachments.listAttachments(a.contactId, a.options),
  getAttachment: (a) =>
    wix.attachments.getAttachment({ contactId: a.contactId, attachmentId: a.attachmentId }),
  deleteAttachment: (a) =>
    wix.attachments.deleteAttachment({ contactId: a.contactId, attachmentId: a.attachmentId }),
  generateFileUploadUrl: (a) => wix.files.generateFileUploadUrl(a.mimeType, a.options),
  generateFileResumableUploadUrl: (a) => wix.files.generateFileResumableUploadUrl(a.mimeType, a.options),
  importFile: (a) => wix.files.importFile(a.url, a.options),
  getFileDescriptor: (a) => wix.files.getFileDescriptor(a.fileId),
  getFileDescriptors: (a) => wix.files.getFileDescriptors(a.fileIds),
  listFiles: (a) => wix.files.listFiles(a.options),
  searchFiles: (a) => wix.files.searchFiles(a.options),
  listDeletedFiles: (a) => wix.files.listDeletedFiles(a.options),
  updateFileDescriptor: (a) => wix.files.updateFileDescriptor(a.file),
  bulkDeleteFiles: (a) => wix.files.bulkDeleteFiles(a.fileIds, a.options),
  bulkRestoreFilesFromTrashBin: (a) => wix.files.bulkRestoreFilesFromTrashBin(a.fileIds),
  generateFileDownloadUrl: (a) => wix.files.generateFileDownloadUrl(a.fileId, a.options),
  generateFilesDownloadUrl: (a) => wix.files.generateFilesDownloadUrl(a.fileIds),
};

const admin = async (method) => {
  const r = await realFetch(`${base}/_admin/requests`, { method });
  return r.json();
};

const out = [];
for (const step of plan) {
  const run = ops[step.op];
  if (!run) throw new Error(`unknown op ${step.op}`);
  await admin('DELETE');
  const entry = { op: step.op };
  try {
    entry.result = (await run(step.args ?? {})) ?? null;
  } catch (e) {
    entry.error = String(e?.message ?? e);
  }
  entry.requests = (await admin('GET')).requests;
  out.push(entry);
}
console.log(JSON.stringify(out));
