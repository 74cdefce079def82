"""Entrypoints of the images the node agent emulates (each runs as the container's PID).

Standard library only: they run with ``python -I`` inside the container, as the image's own
``docker-entrypoint.sh`` would.
"""
