"""A run in one home: its on-disk format (format), in-memory log (log), execution (execute), the
spectrum worker processes (spectrum_worker) and the store + background job registry (store)."""
