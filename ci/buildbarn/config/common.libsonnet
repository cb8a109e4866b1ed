// Shared settings of Chimera's loopback Buildbarn (after buildbarn/bb-deployments'
// "bare" deployment). ci/buildbarn.sh passes the values below as environment
// variables; Buildbarn exposes every environment variable as a Jsonnet extVar.
local env(name) = std.extVar(name);
local port(name) = std.parseInt(env(name));
local loopback(name) = '127.0.0.1:' + env(name);

{
  dataDir: env('BB_DATA'),
  loopback: loopback,
  port: port,

  // Prometheus metrics (actions executed, blobs stored) for `ci/buildbarn.sh status`.
  diagnostics(portVariable): {
    diagnosticsHttpServer: {
      httpServers: [{
        listenAddresses: [loopback(portVariable)],
        authenticationPolicy: { allow: {} },
      }],
      enablePrometheus: true,
      enablePprof: false,
      enableActiveSpans: false,
    },
  },

  // How the scheduler and workers reach bb_storage.
  blobstore: {
    contentAddressableStorage: { grpc: { address: loopback('BB_STORAGE_PORT') } },
    actionCache: {
      completenessChecking: {
        backend: { grpc: { address: loopback('BB_STORAGE_PORT') } },
        maximumTotalTreeSizeBytes: 64 * 1024 * 1024,
      },
    },
  },

  // Bazel uploads blobs in chunks well under this; Buildbarn's default is 4 MiB.
  maximumMessageSizeBytes: 16 * 1024 * 1024,
  allowAll: { allow: {} },
}
