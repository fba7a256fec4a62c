"""The large-model workload: a GPT-style decoder-only language model, its tokenizer, data, training and generation."""
