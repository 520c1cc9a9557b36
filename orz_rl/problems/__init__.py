"""Problems and prompts: what a task asks, in which file formats, in which order, with which template."""
