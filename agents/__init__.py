"""Agent zoo of mtf-gym."""
