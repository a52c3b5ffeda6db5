"""What every compatibility dialect shares: names, documents, statuses, envelopes, URLs."""
