"""The console's screens, in workflow order: connect, client, gate, plan, work, end."""
