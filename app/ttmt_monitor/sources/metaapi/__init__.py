"""MetaApi (metaapi.cloud) as a read-only source: REST client, Socket.IO 2 / EIO3 stream, decoding, the Source."""
