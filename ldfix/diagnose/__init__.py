"""From loader resolutions to findings with codes, evidence and fixes."""
