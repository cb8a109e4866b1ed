// bb_worker: fetches inputs into a build directory (hardlinked from its file
// cache) and asks bb_runner, over a UNIX socket, to run each command.
local common = import 'common.libsonnet';

{
  blobstore: common.blobstore,
  browserUrl: 'http://127.0.0.1:0',  // no bb_browser here
  maximumMessageSizeBytes: common.maximumMessageSizeBytes,
  scheduler: { address: common.loopback('BB_SCHEDULER_WORKER_PORT') },
  // As upstream's deployment: directories the worker creates are open to the
  // runner, which runs as another (unprivileged) user.
  global: common.diagnostics('BB_WORKER_METRICS_PORT') + { setUmask: { umask: 0 } },
  buildDirectories: [{
    native: {
      buildDirectoryPath: common.dataDir + '/worker/build',
      cacheDirectoryPath: common.dataDir + '/worker/cache',
      maximumCacheFileCount: 100000,
      maximumCacheSizeBytes: 4 * 1024 * 1024 * 1024,
      cacheReplacementPolicy: 'LEAST_RECENTLY_USED',
    },
    runners: [{
      endpoint: { address: 'unix:' + common.dataDir + '/worker/runner/socket' },
      concurrency: common.port('BB_CONCURRENCY'),
      // Empty: matches Bazel's default execution platform (no exec_properties).
      platform: {},
      workerId: { hostname: 'localhost', runner: 'hermetic' },
    }],
  }],
  inputDownloadConcurrency: 10,
  outputUploadConcurrency: 11,
  directoryCache: {
    maximumCount: 10000,
    maximumSizeBytes: 16 * 1024 * 1024,
    cacheReplacementPolicy: 'LEAST_RECENTLY_USED',
  },
}
