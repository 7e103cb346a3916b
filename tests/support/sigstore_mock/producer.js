#!/usr/bin/env node
// Test-only producer of real sigstore keyless bundles, with no internet.
//
// Serves @sigstore/mock's Fulcio, Rekor and TSA handlers on 127.0.0.1 (an
// ephemeral port), writes the trusted_root.json that matches their fresh keys,
// then signs every job in a JSON file with @sigstore/sign, exactly as a CI
// signer would, and optionally attaches a bundle to an image with @sigstore/oci.
//
//   node producer.js JOBS.json
//
// JOBS.json: {"trustedRoot": "out/trusted_root.json", "jobs": [{
//     "out": "out/a.sigstore.json",          // bundle JSON written here
//     "issuer": "https://issuer.example",    // OIDC token's iss claim
//     "subject": "ci@example.com",           // token's sub: the certificate SAN
//     "kind": "dsse",                        // dsse (in-toto statement) | message
//     "digest": "sha256:<hex>",              // dsse: the statement's subject digest
//     "name": "127.0.0.1:5056/edge/app",     // dsse: the statement's subject name
//     "predicateType": "https://...",        // dsse: default cosign's signature predicate
//     "artifact": "path",                    // message: the bytes signed
//     "attach": {"image": "127.0.0.1:5056/edge/app", "digest": "sha256:<hex>",
//                "username": "u", "password": "p"}   // optional
// }]}
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const mock = require('@sigstore/mock');
const sign = require('@sigstore/sign');
const { bundleToJSON } = require('@sigstore/bundle');
const { attachArtifactToImage } = require('@sigstore/oci');

const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const INTOTO_STATEMENT = 'https://in-toto.io/Statement/v1';
// cosign's signature predicate: a statement with another predicate is an attestation, not a signature.
const PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';

const newKey = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

// Route POSTs to @sigstore/mock handlers; they take and return plain bodies.
function serve(handlers) {
  const server = http.createServer((req, res) => {
    const handler = handlers.find((h) => h.path === req.url && req.method === 'POST');
    if (!handler) {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const reply = await handler.fn(Buffer.concat(chunks).toString());
      res.writeHead(reply.statusCode, { 'Content-Type': reply.contentType || 'text/plain' });
      res.end(reply.response);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// A minute of slack: Rekor's integrated time is in whole seconds.
const since = () => ({ start: new Date(Date.now() - 60_000).toISOString() });
const b64 = (buf) => Buffer.from(buf).toString('base64');
const keyId = (spki) => b64(crypto.createHash('sha256').update(spki).digest());

function logKey(url, spki, logId) {
  return {
    baseUrl: url,
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: b64(spki), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: since() },
    logId: { keyId: logId },
  };
}

function trustedRoot(url, ca, ctlog, tlog, tsa) {
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [logKey(url, tlog.publicKey, keyId(tlog.publicKey))],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: url,
      certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
      validFor: since(),
    }],
    ctlogs: [logKey(url, ctlog.publicKey, b64(ctlog.logID))],
    timestampAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore-tsa' },
      uri: url,
      certChain: { certificates: [{ rawBytes: b64(tsa.intCertificate) }, { rawBytes: b64(tsa.rootCertificate) }] },
      validFor: since(),
    }],
  };
}

// The real Rekor stores a canonical form of each proposed entry, not the
// request: PEM re-wrapped at 64 columns, and for dsse only the hashes of the
// envelope and payload plus the signatures. The mock stores the request as is,
// which verifiers (rightly) reject, so this front end canonicalizes first.
const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const rewrapPem = (b64pem) => {
  const der = new crypto.X509Certificate(Buffer.from(b64pem, 'base64')).raw.toString('base64');
  const lines = der.match(/.{1,64}/g).join('\n');
  return b64(`-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`);
};

function canonicalEntry(entry) {
  if (entry.kind === 'hashedrekord') {
    const sig = entry.spec.signature;
    return { ...entry, spec: { ...entry.spec, signature: { ...sig, publicKey: { content: rewrapPem(sig.publicKey.content) } } } };
  }
  if (entry.kind === 'dsse') {
    const envelope = entry.spec.proposedContent.envelope;
    const parsed = JSON.parse(envelope);
    const verifier = rewrapPem(entry.spec.proposedContent.verifiers[0]);
    return {
      apiVersion: entry.apiVersion,
      kind: 'dsse',
      spec: {
        envelopeHash: { algorithm: 'sha256', value: sha256hex(envelope) },
        payloadHash: { algorithm: 'sha256', value: sha256hex(Buffer.from(parsed.payload, 'base64')) },
        signatures: parsed.signatures.map((s) => ({ signature: s.sig, verifier })),
      },
    };
  }
  return entry;
}

function canonicalRekor(tlog) {
  const inner = mock.rekorHandler(tlog);
  return { path: inner.path, fn: (body) => inner.fn(JSON.stringify(canonicalEntry(JSON.parse(body)))) };
}

// An unsigned JWT: the mock Fulcio decodes but does not verify it.
function token(issuer, subject) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ iss: issuer, sub: subject, aud: 'sigstore', iat: now, exp: now + 600 })}.`;
}

function builder(kind, url, job) {
  const signer = new sign.FulcioSigner({
    fulcioBaseURL: url,
    identityProvider: { getToken: async () => token(job.issuer, job.subject) },
  });
  const witnesses = [new sign.RekorWitness({ rekorBaseURL: url, entryType: 'dsse' })];
  if (job.tsa) witnesses.push(new sign.TSAWitness({ tsaBaseURL: url }));
  const Builder = kind === 'message' ? sign.MessageSignatureBundleBuilder : sign.DSSEBundleBuilder;
  return new Builder({ signer, witnesses });
}

function artifact(job) {
  if (job.kind === 'message') return { data: fs.readFileSync(job.artifact) };
  const [alg, hex] = job.digest.split(':');
  const statement = {
    _type: INTOTO_STATEMENT,
    subject: [{ name: job.name || 'image', digest: { [alg]: hex } }],
    predicateType: job.predicateType || PREDICATE_TYPE,
    predicate: {},
  };
  return { data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' };
}

// proto3 JSON omits zero values, so the mock's one-entry-tree proof (index 0,
// no hashes) loses both fields; sigstore-python requires them. Emitting the
// defaults is an equally valid encoding of the same message.
function withProofDefaults(json) {
  for (const entry of json.verificationMaterial.tlogEntries || []) {
    if (entry.inclusionProof) entry.inclusionProof = { logIndex: '0', hashes: [], ...entry.inclusionProof };
  }
  return json;
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const ctlog = await mock.initializeCTLog(newKey());
  const ca = await mock.initializeCA(newKey(), ctlog);
  const tsa = await mock.initializeTSA(newKey());
  // The Rekor host goes into checkpoints; it is fixed before we know the port.
  const tlog = await mock.initializeTLog('http://127.0.0.1', newKey());
  const server = await serve([mock.fulcioHandler(ca), canonicalRekor(tlog), mock.tsaHandler(tsa)]);
  const url = `http://127.0.0.1:${server.address().port}`;
  try {
    fs.mkdirSync(path.dirname(spec.trustedRoot), { recursive: true });
    fs.writeFileSync(spec.trustedRoot, JSON.stringify(trustedRoot(url, ca, ctlog, tlog, tsa), null, 2));
    for (const job of spec.jobs) {
      const bundle = await builder(job.kind || 'dsse', url, job).create(artifact(job));
      const json = JSON.stringify(withProofDefaults(bundleToJSON(bundle)));
      fs.writeFileSync(job.out, json);
      if (job.attach) {
        const a = job.attach;
        const desc = await attachArtifactToImage({
          imageName: a.image,
          imageDigest: a.digest,
          artifact: Buffer.from(json),
          mediaType: BUNDLE_MEDIA_TYPE,
          annotations: job.kind === 'message'
            ? { 'dev.sigstore.bundle.content': 'message-signature' }
            : { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': job.predicateType || PREDICATE_TYPE },
          credentials: { username: a.username, password: a.password },
        });
        fs.writeFileSync(`${job.out}.attached.json`, JSON.stringify(desc));
      }
    }
  } finally {
    server.close();
  }
}

main().catch((err) => {
  console.error(err && err.cause ? `${err.stack}\ncaused by: ${err.cause.stack || err.cause}` : err);
  process.exit(1);
});
