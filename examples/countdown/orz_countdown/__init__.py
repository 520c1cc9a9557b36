"""The Countdown numbers game as an orz-rl task (``--task countdown`` once installed)."""
