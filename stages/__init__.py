"""Thin DVC stage CLIs: parse arguments, read params, call `vae`, write outputs atomically."""
