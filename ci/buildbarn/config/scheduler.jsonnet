// bb_scheduler: queues Execute requests from bb_storage and hands them to bb_worker.
local common = import 'common.libsonnet';

{
  adminHttpServers: [{
    listenAddresses: [common.loopback('BB_SCHEDULER_ADMIN_PORT')],
    authenticationPolicy: common.allowAll,
  }],
  clientGrpcServers: [{
    listenAddresses: [common.loopback('BB_SCHEDULER_CLIENT_PORT')],
    authenticationPolicy: common.allowAll,
  }],
  workerGrpcServers: [{
    listenAddresses: [common.loopback('BB_SCHEDULER_WORKER_PORT')],
    authenticationPolicy: common.allowAll,
  }],
  browserUrl: 'http://127.0.0.1:0',  // no bb_browser here
  contentAddressableStorage: common.blobstore.contentAddressableStorage,
  maximumMessageSizeBytes: common.maximumMessageSizeBytes,
  global: common.diagnostics('BB_SCHEDULER_METRICS_PORT'),
  executeAuthorizer: common.allowAll,
  modifyDrainsAuthorizer: common.allowAll,
  killOperationsAuthorizer: common.allowAll,
  actionRouter: {
    simple: {
      platformKeyExtractor: { actionAndCommand: {} },
      invocationKeyExtractors: [
        { correlatedInvocationsId: {} },
        { toolInvocationId: {} },
      ],
      initialSizeClassAnalyzer: {
        defaultExecutionTimeout: '1800s',
        maximumExecutionTimeout: '7200s',
      },
    },
  },
  platformQueueWithNoWorkersTimeout: '900s',
}
