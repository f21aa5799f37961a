"""Fault injection (implementation).

The public names live in [resilience_kit.chaos][]; this package holds the machinery, one module
per responsibility: ``switch`` (the process-wide switch and the gate every decorated call passes),
``faults`` (checking and copying the fault to raise, checking the latency) and ``injector`` (the
decision core and its forms).
"""
