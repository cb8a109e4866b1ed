"""The host tools that tests run, recorded as inputs (see private/host_tool_repository.bzl)."""

load("//tools/host_tools/private:host_tool_repository.bzl", "host_tools_repository")

# Debian's paths (tools/bootstrap.sh --optional installs the packages). `also_hash`
# names the files a wrapper script execs, so an upgrade of the real binary counts too.
HOST_TOOLS = {
    "bazel": {
        "executable": "/usr/bin/bazel",
        "version_args": ["--version"],
        # /usr/bin/bazel is a wrapper script; bazel-4 and the install base are Bazel.
        "also_hash": [
            "/usr/bin/bazel-4",
            "/usr/share/bazel/install_base_key",
        ],
        "install": "apt-get install bazel-bootstrap",
    },
    "chromium": {
        "executable": "/usr/bin/chromium",
        "version_args": ["--version"],
        "also_hash": ["/usr/lib/chromium/chromium"],
        "install": "apt-get install chromium",
    },
    "git": {
        "executable": "/usr/bin/git",
        "version_args": ["--version"],
        "install": "apt-get install git",
    },
    "postgresql": {
        "executable": "/usr/lib/postgresql/15/bin/postgres",
        "version_args": ["--version"],
        "also_hash": [
            "/usr/lib/postgresql/15/bin/initdb",
            "/usr/lib/postgresql/15/bin/pg_ctl",
        ],
        "install": "apt-get install postgresql-15",
    },
    "prometheus": {
        "executable": "/usr/bin/prometheus",
        "version_args": ["--version"],
        "install": "apt-get install prometheus",
    },
    "promtool": {
        "executable": "/usr/bin/promtool",
        "version_args": ["--version"],
        "install": "apt-get install prometheus",
    },
    "skopeo": {
        "executable": "/usr/bin/skopeo",
        "version_args": ["--version"],
        "install": "apt-get install skopeo",
    },
    "umoci": {
        "executable": "/usr/bin/umoci",
        "version_args": ["--version"],
        "install": "apt-get install umoci",
    },
}

def host_tools(name = "host_tools"):
    """Creates @host_tools: `@host_tools//:<tool>` is the record a test lists in its data."""
    host_tools_repository(name = name, tools = json.encode(HOST_TOOLS))
