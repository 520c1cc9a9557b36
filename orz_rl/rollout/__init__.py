"""Rollout: generation engines and policies, the collector, its batch adapter and buffers, weight sync."""
