"""Job execution: claim with a lease, heartbeat, run the handler, recover after crashes."""
