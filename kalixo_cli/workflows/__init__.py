"""The work itself: placing exactly once, bulk runs, waiting, syncing the journal."""
