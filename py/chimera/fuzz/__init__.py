"""Contract fuzzing of a running gRPC service, driven by server reflection.

``generate`` builds seeded random and malformed requests from a message
descriptor alone; ``harness`` discovers a service's methods through
reflection, sends them, and classifies each reply. The test every layer gets
from its template (``<name>_fuzz_test``) is ``py/fuzz/contract_fuzz_test.py``.
"""
