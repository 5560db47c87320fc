"""Test-wide setup: a private run store, so tests never read or write the user's runs/."""
import os
import tempfile

# Must be set before loopviz.runs is imported anywhere (it reads it at import).
os.environ.setdefault("LOOPVIZ_STORE", tempfile.mkdtemp(prefix="loopviz-test-store-"))
