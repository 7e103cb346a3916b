"""One update as named steps (``reconcile``), the per-stack transaction (``switch``),
crash recovery (``recovery``) and ``rollback`` by hand; on ports only, never adapters."""
