// bb_storage: the CAS and action cache Bazel talks to (--config=remote-cache), and,
// when BB_EXECUTION is 'true', the frontend that forwards Execute requests to
// bb_scheduler (--config=remote).
local common = import 'common.libsonnet';

// One "local" (block-device) store in a sparse file. Every blob must fit in one
// block, and a block is sizeBytes / (old + current + new + spare), so few, large
// blocks: with the default 8 GiB CAS, a block holds blobs up to ~585 MiB (a CAS
// of 32 equal blocks under ~8 GiB refused a 30 MB blob).
local blockStore(name, sizeBytes, keys, newBlocks) = {
  'local': {
    keyLocationMapOnBlockDevice: {
      file: { path: common.dataDir + '/storage-' + name + '/key_location_map', sizeBytes: keys * 66 },
    },
    keyLocationMapMaximumGetAttempts: 16,
    keyLocationMapMaximumPutAttempts: 64,
    oldBlocks: 2,
    currentBlocks: 8,
    newBlocks: newBlocks,
    blocksOnBlockDevice: {
      source: { file: { path: common.dataDir + '/storage-' + name + '/blocks', sizeBytes: sizeBytes } },
      spareBlocks: 2,
    },
    persistent: {
      stateDirectoryPath: common.dataDir + '/storage-' + name + '/persistent_state',
      minimumEpochInterval: '60s',
    },
  },
};

{
  grpcServers: [{
    listenAddresses: [common.loopback('BB_STORAGE_PORT')],
    authenticationPolicy: common.allowAll,
  }],
  maximumMessageSizeBytes: common.maximumMessageSizeBytes,
  global: common.diagnostics('BB_STORAGE_METRICS_PORT'),
  contentAddressableStorage: {
    backend: blockStore('cas', std.parseInt(std.extVar('BB_CAS_SIZE_BYTES')), 1024 * 1024, 2),
    getAuthorizer: common.allowAll,
    putAuthorizer: common.allowAll,
    findMissingAuthorizer: common.allowAll,
  },
  actionCache: {
    // The action cache updates entries in place: one new block, as bb_storage requires.
    backend: blockStore('ac', 64 * 1024 * 1024, 64 * 1024, 1),
    getAuthorizer: common.allowAll,
    putAuthorizer: common.allowAll,
  },
} + (if std.extVar('BB_EXECUTION') == 'true' then {
       schedulers: {
         '': {
           endpoint: {
             address: common.loopback('BB_SCHEDULER_CLIENT_PORT'),
             // Passes Bazel's RequestMetadata on, so the scheduler groups a
             // build's actions by invocation.
             addMetadataJmespathExpression: |||
               {
                 "build.bazel.remote.execution.v2.requestmetadata-bin": incomingGRPCMetadata."build.bazel.remote.execution.v2.requestmetadata-bin"
               }
             |||,
           },
         },
       },
       executeAuthorizer: common.allowAll,
     } else {})
