"""Text generation: the key/value cache, generation settings, logits processors, decoding loops and
streamers. Nothing here is imported by ``import headway``; the public names resolve lazily."""
