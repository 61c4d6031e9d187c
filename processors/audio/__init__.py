"""Pure audio code: codecs, levels. Imports only the stdlib and numpy."""
