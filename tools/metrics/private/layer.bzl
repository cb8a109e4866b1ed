"""layer_of(): which part of the monorepo a label belongs to."""

def layer_of(label):
    """Returns the layer of a label: "layerN" for layers/layerN_name/..., else the top directory.

    Args:
      label: a Label.

    Returns:
      "layer4" for //layers/layer4_execution/rust, "proto" for //proto/chimera/v1,
      "root" for the root package, "external" for other repositories.
    """
    if label.workspace_name and label.workspace_name != "chimera":
        return "external"
    parts = label.package.split("/") if label.package else []
    if not parts:
        return "root"
    if parts[0] == "layers" and len(parts) > 1:
        layer = parts[1].split("_")[0]
        if layer.startswith("layer") and layer[len("layer"):].isdigit():
            return layer
        return "layers"
    return parts[0]
