"""requirement(): the label of a locked third-party distribution."""

_PIP_REPOSITORY = "pypi"

def requirement(name):
    """Returns the @pypi hub alias of a distribution, by any spelling of its name (PEP 503).

    The alias points at the distribution's own wheel repository (@pypi_<name>).

    Args:
      name: project name as on PyPI, e.g. "grpcio-tools" or "PyYAML".

    Returns:
      a label string such as "@pypi//:grpcio-tools".
    """
    normalized = name.lower().replace("_", "-").replace(".", "-")
    for _ in range(len(normalized)):
        if "--" not in normalized:
            break
        normalized = normalized.replace("--", "-")
    return "@%s//:%s" % (_PIP_REPOSITORY, normalized)
