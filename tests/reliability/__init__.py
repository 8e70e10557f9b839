"""Helpers of the reliability suite: a fault-injecting LXD proxy and process harnesses."""
