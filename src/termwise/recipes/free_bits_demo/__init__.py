"""The free-bits demo of the engine on sklearn digits (``termwise demo free-bits``)."""
