"""The benchmark harness: ``course bench`` measures the send path end to end beside this machine's limit."""
