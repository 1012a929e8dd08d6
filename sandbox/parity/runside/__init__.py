"""The run side of a parity check: code that imports a spec and the models it names.

It only ever runs inside the sandbox, one process per side (`python -m sandbox.parity.runside
reference|candidate|mapping ...`), and leaves its outputs as files (sandbox/parity/exchange.py).
It never imports the verdict (sandbox/parity/verdict), which decides from those files alone.
"""
