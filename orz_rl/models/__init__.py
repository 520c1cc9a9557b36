"""Models: loading a base model and its tokenizer, and the embedded tiny model the CPU recipes train."""
