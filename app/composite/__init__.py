"""N-channel colour composites (``POST /composite/generate-nchannel``)."""
