// bb_runner: runs each action's command in the build directory bb_worker prepared.
// ci/buildbarn.sh starts it as an unprivileged user inside a network namespace of
// its own (nothing but its own loopback interface), so actions can reach no network
// but servers they start themselves, as Bazel's linux-sandbox with
// --sandbox_default_allow_network=false does locally.
// No diagnostics server: nothing could reach it from outside the namespace.
local common = import 'common.libsonnet';

{
  buildDirectoryPath: common.dataDir + '/worker/build',
  grpcServers: [{
    listenPaths: [common.dataDir + '/worker/runner/socket'],
    authenticationPolicy: common.allowAll,
  }],
  // TMPDIR inside the action's own directory, removed with it.
  setTmpdirEnvironmentVariable: true,
}
