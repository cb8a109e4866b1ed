"""Carries out a layer-2 plan: its tasks' operations, in dependency order.

``executor`` is the loop (one copy, shared by the main job and the flow
test); ``operations`` binds the operations the layers implement today to
their gRPC calls.
"""
