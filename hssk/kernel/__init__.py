"""The shared kernel: configuration, identifiers, text folding, FHIR code systems and the one
sensitivity rule. Every component may use it; it uses none of them."""
