"""The demo plant: a PC assemble-to-order line, loaded through the real importer."""
