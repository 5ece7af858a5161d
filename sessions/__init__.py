"""The clinical session record: the store and its schema, recording, history and exports."""
