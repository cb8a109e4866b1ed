"""Online 1-D bin packing: the layer-4 kernel's genome, instances and JAX twin.

- :mod:`chimera.binpacking.genome`: the priority function's parameters and
  its (size, room) table, mirroring ``layers/layer4_execution/rust/binpacking``;
- :mod:`chimera.binpacking.instances`: instances, their task-input encoding and
  the project's own generators (training and generalisation instances);
- :mod:`chimera.binpacking.twin`: the JAX twin that screens populations;
- :mod:`chimera.binpacking.published`: the held-out published sets. Only the
  scoreboard imports it; nothing on the search path does.
"""
