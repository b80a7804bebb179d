"""Reading, checking and patching Dockerfiles (`ldfix patch`)."""
