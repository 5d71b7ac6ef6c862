"""synth component."""
